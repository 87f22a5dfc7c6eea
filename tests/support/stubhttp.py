"""A small programmable HTTP server on 127.0.0.1 for the API-layer tests of each provider.

It answers each route (method and path) from a script of replies (the last one repeats),
records every request (headers, query and body), and can delay an answer (to trip a read
timeout), drop the connection without answering, or drip its answer a byte at a time. What
differs by provider (the URL prefix, the error body, keep-alive, the Content-Type) is given
to :class:`StubServer` by that provider's ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list: JSON; str/bytes: sent as is; None: empty
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False  # close the connection without answering
    drip_s: float = 0.0  # send the body one byte every drip_s seconds


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
        """A query value decoded as JSON, or the plain string when it is not JSON."""
        (raw,) = self.query[name]
        try:
            return json.loads(raw)
        except ValueError:
            return raw


Script = Reply | Callable[[Received], Reply]


class StubServer:
    """The stub. ``prefix`` is the API's base path (``url`` ends with it); with
    ``strip_prefix`` a request's recorded path is without it. ``no_route`` answers a request
    no script covers. ``keep_alive`` serves HTTP/1.1; ``json_type`` labels a body
    ``application/json``. Test modules reach the helpers through the fixture: ``stub.Reply``,
    ``stub.error`` (set by each provider's subclass)."""

    Reply = Reply

    def __init__(self, *, prefix: str, no_route: Callable[[Received], Reply],
                 strip_prefix: bool = False, keep_alive: bool = False,
                 json_type: bool = False) -> None:
        self.prefix, self.strip_prefix, self.no_route = prefix, strip_prefix, no_route
        self.keep_alive, self.json_type = keep_alive, json_type
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
        """The API's base URL on this server (what the client is configured with)."""
        return self.origin + self.prefix

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
                return self.no_route(received)
            script = queue.popleft() if len(queue) > 1 else queue[0]
        return script(received) if callable(script) else script

    def recorded_path(self, path: str) -> str:
        if self.strip_prefix and path.startswith(self.prefix):
            return path[len(self.prefix):]
        return path


def _handler_for(stub: StubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # Keep-alive where the provider's servers answer so. (Under HTTP/1.0 http.client
        # closes the connection object once the headers are read, so an attempt deadline
        # cannot reach a body that drips.)
        protocol_version = "HTTP/1.1" if stub.keep_alive else "HTTP/1.0"

        def log_message(self, *args: object) -> None:
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            received = Received(self.command, stub.recorded_path(parts.path),
                                parse_qs(parts.query), dict(self.headers.items()),
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
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if data and stub.json_type:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if not reply.drip_s:
                self.wfile.write(data)
                return
            for byte in data:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(reply.drip_s)

        do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _serve

    return Handler
