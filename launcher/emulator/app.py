"""The request pipeline, independent of the HTTP server and of the provider emulated.

The control endpoint (``/_emulator/...``, see :mod:`launcher.emulator.control`) is answered
apart. For the API, the order is: rate limit → route (404/405) → auth (the dialect's: for
Vultr, 401 for an unknown key or a known one from an address its allowlist lacks) → injected
fault → handler; the :class:`~launcher.emulator.dialect.Dialect` supplies routes and wordings.
Every answered request is logged as an :class:`Event` and handed to listeners as an
:class:`Exchange` before its bytes are written, so a client that has its response can already
see both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from launcher.emulator.control import Control, is_control
from launcher.emulator.dialect import Dialect, RouteLike
from launcher.emulator.errors import HypervisorError, Refusal
from launcher.emulator.events import MUTATING_METHODS, EventLog, Exchange, redact_headers
from launcher.emulator.faults import Fault, FaultPlan
from launcher.emulator.keys import Keyring, Verdict
from launcher.emulator.ratelimit import Limiter
from launcher.emulator.wire import Request, Response

Listener = Callable[[Exchange], None]


@dataclass
class _Seen:
    """What the pipeline learnt about a request, for its event."""

    route: RouteLike | None = None
    verdict: Verdict = field(default_factory=Verdict)
    fault: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Answer:
    """What the server writes: status, headers, body."""

    status: int
    headers: dict[str, str]
    body: bytes


class App:
    """Turns a :class:`Request` into an :class:`Answer` (or None: drop the connection)."""

    def __init__(self, store: Any, keys: Keyring, limiter: Limiter, faults: FaultPlan,
                 stopping: threading.Event, latency_s: float = 0.0, *,
                 dialect: Dialect, control: Control) -> None:
        self.store = store  # handed to route handlers; ``store.now()`` dates events
        self.latency_s = latency_s
        self.keys = keys
        self.limiter = limiter
        self.faults = faults
        self.dialect = dialect
        self.control = control
        self.stopping = stopping
        self.log = EventLog()
        self.listeners: list[Listener] = []
        self.listener_errors: list[str] = []
        self.internal_errors: list[str] = []
        self._in_flight = 0
        self._idle = threading.Condition()

    @contextmanager
    def in_flight(self) -> Iterator[None]:
        """Count a request being served, so ``wait_idle`` can wait for it."""
        with self._idle:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is being served; False if ``timeout`` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def handle(self, req: Request) -> Answer | None:
        """Answer one request; record its event and notify listeners first. With a latency,
        every answer waits that long first (a network round trip; cut short by ``stop``).
        The control endpoint (``/_emulator/...``, not the provider's API) is answered apart: no
        latency, rate limit, event or listener."""
        if is_control(req.path):
            response = self.control.handle(req)
            return Answer(response.status, *response.encode())
        if self.latency_s:
            self.stopping.wait(self.latency_s)
        header = req.header("authorization")
        seen = _Seen(verdict=self.keys.judge(header, req.client))
        response = self._respond(req, seen)
        answer = None
        if response is not None:
            headers, body = response.encode()
            answer = Answer(response.status, headers, body)
            if response.note:
                seen.notes.append(response.note)
        self._record(req, seen, answer)
        return answer

    def _respond(self, req: Request, seen: _Seen) -> Response | None:
        dialect = self.dialect
        try:
            retry_after = self.limiter.admit(req.client)
            if retry_after is not None:
                return dialect.rate_limited(retry_after)
            route, ids = dialect.match(req.method, req.path)
            seen.route = route
            dialect.authorize(route, ids, seen.verdict, req)
            fault = self.faults.take(route.key)
            if fault is not None:
                seen.fault = fault.kind
                return self._fire(fault, route, req, ids)
            return route.handler(self.store, req, ids)
        except Refusal as refusal:
            return dialect.refusal(refusal)
        except HypervisorError as exc:
            self.internal_errors.append(f"hypervisor hook {exc} raised {exc.__cause__!r}")
            return dialect.internal()
        except Exception as exc:  # a bug in the emulator: answer like a server would, keep it
            self.internal_errors.append(repr(exc))
            return dialect.internal()

    def _fire(self, fault: Fault, route: RouteLike, req: Request,
              ids: list[str]) -> Response | None:
        dialect = self.dialect
        if fault.kind == "429":
            return dialect.rate_limited(fault.opts.get("retry_after"))
        if fault.kind == "hang":
            self.stopping.wait(fault.opts["hang_s"])
            if fault.opts["then"] == "504" and not self.stopping.is_set():
                return dialect.status_error(504)
            return None
        if fault.kind == "ambiguous_create":
            # A refusal propagates as itself: a request that was not performed is not ambiguous.
            performed = route.handler(self.store, req, ids)
            answer = dialect.internal()
            answer.note = f"performed for real (would have answered {performed.status})"
            return answer
        if fault.kind == "refuse":
            return dialect.refused(fault.opts["status"], fault.opts["error"])
        return dialect.status_error(int(fault.kind))

    def _record(self, req: Request, seen: _Seen, answer: Answer | None) -> None:
        self.log.record(
            t=self.store.now(), method=req.method, path=req.path,
            route=seen.route.template if seen.route else None,
            query={k: v[0] for k, v in req.query.items() if v},
            status=answer.status if answer else None,
            mutating=req.method in MUTATING_METHODS and not (seen.route and seen.route.reads),
            authorized=seen.verdict.accepted, fault=seen.fault,
            key=seen.verdict.name if seen.verdict.accepted else None,
            note="; ".join(seen.notes) or None)
        if answer is None:
            return
        exchange = Exchange(
            method=req.method, path=req.path, query=req.query,
            request_headers=redact_headers(req.headers), request_body=req.body,
            status=answer.status, response_headers=dict(answer.headers),
            response_body=answer.body, route=seen.route.template if seen.route else None)
        for listener in list(self.listeners):
            try:
                listener(exchange)
            except Exception as exc:  # a listener's bug must not break the server
                self.listener_errors.append(repr(exc))
