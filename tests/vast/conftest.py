"""Fixtures for the Vast.ai API layer: a small programmable HTTP server on 127.0.0.1 that
serves ``/api/v0/...`` and ``/api/v1/...`` as Vast does, and fake time.

The stub answers each route (method and full path) from a script of replies (the last one
repeats), records every request (headers, query and body), and can delay an answer, drop the
connection, or drip its answer a byte at a time.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from support.clock import FakeClock
from support.keys import FAKE_VAST_KEY  # noqa: F401 - never printed: every test is scanned

from launcher.secrets import Secret
from launcher.vast import VastClient, VastHttp
from launcher.vultr import PollPolicy, RetryPolicy, Timeouts


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list: JSON; str/bytes: sent as is; None: empty
    delay: float = 0.0
    drop: bool = False  # close the connection without answering
    drip_s: float = 0.0  # send the body one byte every drip_s seconds


def vast_error(status: int, code: str, msg: str) -> Reply:
    """Vast's usual error body (vast-ai/docs api-reference/rate-limits-and-errors.mdx)."""
    return Reply(status, {"success": False, "error": code, "msg": msg})


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = field(repr=False)

    def json(self) -> Any:
        return json.loads(self.body)

    def arg(self, name: str) -> Any:
        """A query value as vast-cli sends it: JSON for anything but a plain string."""
        (raw,) = self.query[name]
        try:
            return json.loads(raw)
        except ValueError:
            return raw


Script = Reply | Callable[[Received], Reply]


class StubServer:
    Reply = Reply
    error = staticmethod(vast_error)

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], deque[Script]] = {}
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.01}, daemon=True)

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """What ``VAST_API_URL`` would be for this server."""
        return self.origin + "/api/v0"

    def start(self) -> StubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def add(self, method: str, path: str, *replies: Script) -> None:
        """Script a route (its full path, e.g. ``/api/v0/bundles/``): replies are used in
        order, the last one repeats."""
        self.routes.setdefault((method, path), deque()).extend(replies)

    def calls(self, method: str, path: str) -> list[Received]:
        return [r for r in self.received if (r.method, r.path) == (method, path)]

    def next_reply(self, received: Received) -> Reply:
        with self._lock:
            self.received.append(received)
            queue = self.routes.get((received.method, received.path))
            if not queue:
                return vast_error(404, "not_found", f"no route {received.path}")
            script = queue.popleft() if len(queue) > 1 else queue[0]
        return script(received) if callable(script) else script


def _handler_for(stub: StubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # Keep-alive, as Vast's servers answer. (Under HTTP/1.0 http.client closes the
        # connection object once the headers are read, so the attempt deadline cannot reach
        # a body that drips: a gap of launcher/vultr/cutoff.py, reported, not covered here.)
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            received = Received(self.command, parts.path, parse_qs(parts.query),
                                dict(self.headers.items()),
                                self.rfile.read(length) if length else b"")
            reply = stub.next_reply(received)
            if reply.delay:
                time.sleep(reply.delay)
            if reply.drop:
                self.close_connection = True
                return
            with contextlib.suppress(OSError):  # the client gave up before the answer
                self._write(reply)

        def _write(self, reply: Reply) -> None:
            body = reply.body
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            data = body.encode() if isinstance(body, str) else (body or b"")
            self.send_response(reply.status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if not reply.drip_s:
                self.wfile.write(data)
                return
            for byte in data:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(reply.drip_s)

        do_GET = do_POST = do_DELETE = do_PUT = _serve

    return Handler


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
