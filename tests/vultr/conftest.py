"""Fixtures for the Vultr API layer: a tiny programmable HTTP server on 127.0.0.1 and fake time.

The stub answers each route from a script of replies (the last one repeats), records every
request it receives (headers included), and can delay an answer (to trip a read timeout) or
drop the connection without answering.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
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
from support.contract import contract_checker
from support.keys import FAKE_VULTR_KEY as FAKE_KEY  # the suite scans all output for it

from launcher.secrets import Secret
from launcher.vultr import PollPolicy, RetryPolicy, Timeouts, VultrClient, VultrHttp

PREFIX = "/v2"


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list: JSON; str/bytes: sent as is; None: empty
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False  # close the connection without answering


def envelope(status: int, message: str, **headers: str) -> Reply:
    return Reply(status, {"error": message, "status": status}, headers=dict(headers))


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Script = Reply | Callable[[Received], Reply]


class StubServer:
    """Test modules reach the helpers through the fixture: ``stub.Reply``, ``stub.error``."""

    Reply = Reply
    error = staticmethod(envelope)

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], deque[Script]] = {}
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{PREFIX}"

    def start(self) -> StubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def add(self, method: str, path: str, *replies: Script) -> None:
        """Script a route: replies are used in order, the last one repeats."""
        self.routes.setdefault((method, path), deque()).extend(replies)

    def calls(self, method: str, path: str) -> list[Received]:
        return [r for r in self.received if (r.method, r.path) == (method, path)]

    def next_reply(self, received: Received) -> Reply:
        with self._lock:
            self.received.append(received)
            queue = self.routes.get((received.method, received.path))
            if not queue:
                return envelope(404, f"stub has no route {received.method} {received.path}")
            script = queue.popleft() if len(queue) > 1 else queue[0]
        return script(received) if callable(script) else script


def _handler_for(stub: StubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            path = parts.path[len(PREFIX) :] if parts.path.startswith(PREFIX) else parts.path
            length = int(self.headers.get("Content-Length") or 0)
            received = Received(
                self.command,
                path,
                parse_qs(parts.query),
                dict(self.headers.items()),
                self.rfile.read(length) if length else b"",
            )
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
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _serve

    return Handler


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
