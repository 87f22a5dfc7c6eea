"""The :class:`Emulator`: a stateful Vultr API v2 on 127.0.0.1, in a background thread.

:class:`LoopbackEmulator` is the provider-independent part (serving thread, lifecycle,
faults, keys, observation), shared with the Vast emulator (``launcher.emulator.vast``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from launcher.emulator.app import Answer, App, Listener
from launcher.emulator.control import CONTROL_PREFIX, Control, VultrStock
from launcher.emulator.dialect import VultrDialect
from launcher.emulator.events import Event
from launcher.emulator.faults import Fault, FaultPlan
from launcher.emulator.hypervisor import Hypervisor, NoopHypervisor
from launcher.emulator.keys import Keyring
from launcher.emulator.ratelimit import Limiter, RateLimit
from launcher.emulator.routes import API_PREFIX, ROUTE_KEYS
from launcher.emulator.state import Store
from launcher.emulator.timing import Timing
from launcher.emulator.wire import Request

HOST = "127.0.0.1"
MAX_BODY_BYTES = 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    """Adapts http.server to :class:`App`; one request per connection (HTTP/1.0)."""

    app: App  # set on the subclass made per emulator, as is server_version
    server_version = "vultr-emulator"
    timeout = 30  # a client that stalls mid-request cannot pin a thread forever

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base signature
        """Silent: the emulator reports through its event log, never by printing."""

    def version_string(self) -> str:
        return self.server_version

    def _serve(self) -> None:
        body, body_error = self._read_body()
        parts = urlsplit(self.path)
        request = Request(
            method=self.command, path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=dict(self.headers.items()), body=body,
            client=self.client_address[0], body_error=body_error)
        with self.app.in_flight():
            answer = self.app.handle(request)
            if answer is not None:
                self._write(answer)
        if answer is None:
            self.close_connection = True

    def _write(self, answer: Answer) -> None:
        try:
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.body)
        except OSError:
            self.close_connection = True  # the client gave up (e.g. after a hang)

    def _read_body(self) -> tuple[bytes, str | None]:
        raw = self.headers.get("Content-Length") or "0"
        if not raw.isdigit():
            self.close_connection = True
            return b"", "bad_length"
        if int(raw) > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body must not be parsed as a request
            return b"", "body_too_large"
        length = int(raw)
        return self.rfile.read(length), None

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


class LoopbackEmulator:
    """A loopback API served from a daemon thread: what every emulated provider shares.

    A subclass sets ``self._app`` (its :class:`App`) and ``self._faults`` in ``__init__``
    after calling this one, and names its URL prefix, thread and ``Server`` header.
    """

    api_prefix = API_PREFIX
    thread_name = "vultr-emulator"
    server_version = "vultr-emulator"
    _app: App
    _faults: FaultPlan

    def __init__(self, port: int = 0) -> None:
        self._stopping = threading.Event()
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(url={self.url!r})" if self._server else f"{name}(stopped)"

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> str:
        """Bind 127.0.0.1 (port 0: a free one), serve in a daemon thread, return the URL."""
        if self._server is not None:
            raise RuntimeError("the emulator is already started")
        handler = type("EmulatorHandler", (_Handler,),
                       {"app": self._app, "server_version": self.server_version})
        server = ThreadingHTTPServer((HOST, self._port), handler)
        server.daemon_threads = True
        self._stopping.clear()
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01},
                                        name=self.thread_name, daemon=True)
        self._thread.start()
        return self.url

    def stop(self, timeout: float = 5.0) -> None:
        """Release hung handlers, stop serving, close the socket, join the thread."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout)
        self._app.wait_idle(timeout)
        self._server = self._thread = None

    def __enter__(self) -> LoopbackEmulator:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base(self) -> str:
        """``http://127.0.0.1:PORT``; only valid while started."""
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return f"http://{HOST}:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """The API's base URL (Vultr: ``http://127.0.0.1:PORT/v2``); only valid while started."""
        return self.base + self.api_prefix

    @property
    def control_url(self) -> str:
        """``http://127.0.0.1:PORT/_emulator``: the emulator's own control endpoint (not
        the provider's API; see ``launcher.emulator.control``); only valid while started."""
        return self.base + CONTROL_PREFIX

    # -- keys and faults ------------------------------------------------------------------

    def add_key(self, key: str, name: str, allowed_ips: Iterable[str] | None = None) -> None:
        """Accept ``key`` too, recorded in events as ``name``. With ``allowed_ips`` it is
        refused from any other client address (the tests' is 127.0.0.1) with Vultr's 401
        ``Unauthorized IP address: <address>``; without, it works from anywhere."""
        self._app.keys.add(key, name, allowed_ips)

    def inject(self, route: str, kind: str, count: int = 1, **opts: object) -> None:
        """Make the next ``count`` calls of ``route`` (Vultr: "POST /instances") fail as
        ``kind``.

        See ``launcher.emulator.faults`` for kinds and options."""
        self._faults.inject(route, kind, count, **opts)

    def pending_faults(self) -> list[Fault]:
        """Faults armed and not yet fired."""
        return self._faults.pending()

    def clear_faults(self) -> int:
        """Disarm every armed fault; how many there were."""
        return self._faults.clear()

    # -- observation ----------------------------------------------------------------------

    @property
    def events(self) -> list[Event]:
        """A snapshot of every request so far, oldest first."""
        return self._app.log.snapshot()

    def mutations(self) -> list[Event]:
        """Events that were mutating (POST/PUT/PATCH/DELETE) and carried the valid key."""
        return [e for e in self.events if e.mutating and e.authorized]

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(exchange)`` for every answered request, before it is written."""
        self._app.listeners.append(listener)

    @property
    def listener_errors(self) -> list[str]:
        """Exceptions listeners raised (they never break the server)."""
        return list(self._app.listener_errors)

    @property
    def internal_errors(self) -> list[str]:
        """Exceptions behind 500 answers the emulator did not inject (hook failures, bugs)."""
        return list(self._app.internal_errors)


class Emulator(LoopbackEmulator):
    """A loopback Vultr API. ``start()`` returns its base URL (``http://127.0.0.1:PORT/v2``).

    ``api_key`` is the accepted bearer token (events name it ``main``; ``add_key`` adds
    others, each with an optional IP allowlist); ``timing`` how fast resources change state
    (read lazily from ``clock``, default ``time.monotonic``); ``hypervisor`` is told about
    instances and volumes; ``rate_limit`` caps requests per client IP; ``seed`` makes ids,
    passwords and mount ids reproducible (None: random); ``latency_s`` delays every answer
    (a network round trip, for benchmarks). Use as a context manager to stop it.
    """

    def __init__(self, api_key: str = "test-key", timing: Timing | None = None,
                 clock: Callable[[], float] | None = None, hypervisor: Hypervisor | None = None,
                 rate_limit: RateLimit | None = None, seed: int | None = 0, port: int = 0,
                 latency_s: float = 0.0) -> None:
        if not api_key:
            raise ValueError("the emulator needs a non-empty api_key")
        if latency_s < 0:
            raise ValueError("the emulator's latency_s must not be negative")
        super().__init__(port)
        self._faults = FaultPlan(set(ROUTE_KEYS))
        store = Store(clock or time.monotonic, timing or Timing.realistic(),
                      hypervisor or NoopHypervisor(), seed)
        keys = Keyring(api_key)
        control = Control(self._faults, keys, endpoints={
            "/stock": (("GET", "POST"), VultrStock(store).handle)})
        self._app = App(store, keys, Limiter(rate_limit or RateLimit()), self._faults,
                        self._stopping, latency_s, dialect=VultrDialect(), control=control)

    def __enter__(self) -> Emulator:
        super().__enter__()
        return self

    @property
    def state(self) -> Store:
        """The store, for tests that inspect or force resource states."""
        return self._app.store

    def set_stock(self, region_id: str, plan_ids: list[str]) -> None:
        """What ``region_id`` has in stock (availability and create-instance both read it)."""
        self.state.set_stock(region_id, list(plan_ids))

    def stock(self, region_id: str) -> list[str]:
        """The plan ids in stock in ``region_id``."""
        return self.state.stock(region_id)
