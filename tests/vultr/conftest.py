"""Fixtures for the Vultr API layer: the programmable HTTP server on 127.0.0.1
(``support.stubhttp``) serving ``/v2/...`` as Vultr does, and fake time.
"""

from __future__ import annotations

import random
import socket
from typing import Any

import pytest
from support.clock import FakeClock
from support.contract import contract_checker
from support.keys import FAKE_VULTR_KEY as FAKE_KEY  # the suite scans all output for it
from support.stubhttp import Reply
from support.stubhttp import StubServer as _StubServer

from launcher.secrets import Secret
from launcher.vultr import PollPolicy, RetryPolicy, Timeouts, VultrClient, VultrHttp

PREFIX = "/v2"


def envelope(status: int, message: str, **headers: str) -> Reply:
    return Reply(status, {"error": message, "status": status}, headers=dict(headers))


class StubServer(_StubServer):
    """Routes are scripted by their path below ``/v2``; bodies are labelled JSON."""

    error = staticmethod(envelope)

    def __init__(self) -> None:
        super().__init__(prefix=PREFIX, strip_prefix=True, json_type=True, no_route=lambda r:
                         envelope(404, f"stub has no route {r.method} {r.path}"))


@pytest.fixture
def stub():
    """The stub server; at teardown every request the API layer sent it to a path of Vultr's
    OpenAPI document is validated against that document."""
    server = StubServer().start()
    yield server
    server.stop()
    checker = contract_checker()
    problems = []
    for r in server.received:
        path = PREFIX + r.path
        problems += checker.check_request(r.method, path, r.query, r.headers, r.body) or []
    if problems:
        pytest.fail("requests broke the contract:\n" + "\n".join(problems[:20]))


@pytest.fixture
def fake_key() -> str:
    return FAKE_KEY


@pytest.fixture
def fake_time() -> FakeClock:
    return FakeClock(start=1000.0)


@pytest.fixture
def make_http(stub: StubServer, fake_time: FakeClock):
    def make(key: str | None = FAKE_KEY, **options: Any) -> VultrHttp:
        options.setdefault("base_url", stub.url)
        options.setdefault("timeouts", Timeouts(connect=1.0, read=2.0))
        options.setdefault("policy", RetryPolicy(max_attempts=4, base_delay=0.5, jitter="none"))
        return VultrHttp(
            Secret(key) if key is not None else None,
            sleep=fake_time.sleep,
            clock=fake_time.clock,
            rng=random.Random(7),
            **options,
        )

    return make


@pytest.fixture
def http(make_http) -> VultrHttp:
    return make_http()


@pytest.fixture
def client(http: VultrHttp) -> VultrClient:
    return VultrClient(http, poll=PollPolicy(initial=1.0, factor=2.0, max_interval=8.0))


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL where nothing listens: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{PREFIX}"
