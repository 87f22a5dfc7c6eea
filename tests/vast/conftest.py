"""Fixtures for the Vast.ai API layer: the programmable HTTP server on 127.0.0.1
(``support.stubhttp``) serving ``/api/v0/...`` and ``/api/v1/...`` as Vast does, and fake
time. Routes are scripted by method and full path.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from support.clock import FakeClock
from support.keys import FAKE_VAST_KEY  # noqa: F401 - never printed: every test is scanned
from support.stubhttp import Reply
from support.stubhttp import StubServer as _StubServer

from launcher.secrets import Secret
from launcher.vast import VastClient, VastHttp
from launcher.vultr import PollPolicy, RetryPolicy, Timeouts


def vast_error(status: int, code: str, msg: str) -> Reply:
    """Vast's usual error body (vast-ai/docs api-reference/rate-limits-and-errors.mdx)."""
    return Reply(status, {"success": False, "error": code, "msg": msg})


class StubServer(_StubServer):
    """Routes are scripted by their full path (e.g. ``/api/v0/bundles/``); ``url`` is what
    ``VAST_API_URL`` would be for this server."""

    error = staticmethod(vast_error)

    def __init__(self) -> None:
        # Keep-alive, as Vast's servers answer: under HTTP/1.0 the attempt deadline cannot
        # reach a body that drips (a gap of launcher/vultr/cutoff.py, reported, not covered).
        super().__init__(prefix="/api/v0", keep_alive=True, no_route=lambda received:
                         vast_error(404, "not_found", f"no route {received.path}"))


@pytest.fixture
def stub():
    server = StubServer().start()
    yield server
    server.stop()


@pytest.fixture
def other_host():
    """A second server: the host a ``result_url`` points at."""
    server = StubServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_time() -> FakeClock:
    return FakeClock(start=1000.0)


@pytest.fixture
def make_http(stub: StubServer, fake_time: FakeClock):
    def make(key: str | None = FAKE_VAST_KEY, **options: Any) -> VastHttp:
        options.setdefault("base_url", stub.url)
        options.setdefault("timeouts", Timeouts(connect=1.0, read=2.0, attempt=3.0))
        options.setdefault("policy", RetryPolicy(max_attempts=4, base_delay=0.5, jitter="none"))
        return VastHttp(Secret(key) if key is not None else None, sleep=fake_time.sleep,
                        clock=fake_time.clock, rng=random.Random(7), **options)

    return make


@pytest.fixture
def http(make_http) -> VastHttp:
    return make_http()


@pytest.fixture
def client(http: VastHttp) -> VastClient:
    return VastClient(http, poll=PollPolicy(initial=2.0, factor=2.0, max_interval=8.0),
                      log_poll=PollPolicy(initial=0.5, factor=2.0, max_interval=2.0))
