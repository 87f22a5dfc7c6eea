"""The request pipeline, independent of the HTTP server.

The control endpoint (``/_emulator/...``, see :mod:`launcher.emulator.control`) is answered
apart. For the API, the order is: rate limit → route (404/405) → auth (401: an unknown key,
or a known one from an address its allowlist lacks) → injected fault → handler. Every answered
request is logged as an :class:`Event` and handed to listeners as an :class:`Exchange` before
its bytes are written, so a client that has its response can already see both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus

from launcher.emulator.control import Control, is_control
from launcher.emulator.errors import ERRORS, HypervisorError, Refusal
from launcher.emulator.events import MUTATING_METHODS, EventLog, Exchange, redact_headers
from launcher.emulator.faults import Fault, FaultPlan
from launcher.emulator.keys import Keyring, Verdict
from launcher.emulator.ratelimit import Limiter
from launcher.emulator.routes import Route, match
from launcher.emulator.state import Store
from launcher.emulator.wire import Request, Response, error_response

Listener = Callable[[Exchange], None]


@dataclass
class _Seen:
    """What the pipeline learnt about a request, for its event."""

    route: Route | None = None
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

    def __init__(self, store: Store, keys: Keyring, limiter: Limiter, faults: FaultPlan,
                 stopping: threading.Event, latency_s: float = 0.0) -> None:
        self.store = store
        self.latency_s = latency_s
        self.keys = keys
        self.limiter = limiter
        self.faults = faults
        self.control = Control(faults, store, keys)
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
        The control endpoint (``/_emulator/...``, not Vultr's API) is answered apart: no
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
        try:
            retry_after = self.limiter.admit(req.client)
            if retry_after is not None:
                raise Refusal(429, "rate_limited", headers={"Retry-After": str(retry_after)})
            route, ids = match(req.method, req.path)
            seen.route = route
            if not route.public and not seen.verdict.accepted:
                if seen.verdict.name:  # a valid key, from an address its allowlist lacks
                    raise Refusal(401, "unauthorized_ip", address=req.client)
                raise Refusal(401, "unauthorized")
            fault = self.faults.take(route.key)
            if fault is not None:
                seen.fault = fault.kind
                return self._fire(fault, route, req, ids)
            return route.handler(self.store, req, ids)
        except Refusal as refusal:
            return error_response(refusal.status, refusal.text, refusal.headers)
        except HypervisorError as exc:
            self.internal_errors.append(f"hypervisor hook {exc} raised {exc.__cause__!r}")
            return error_response(500, ERRORS["internal"])
        except Exception as exc:  # a bug in the emulator: answer like a server would, keep it
            self.internal_errors.append(repr(exc))
            return error_response(500, ERRORS["internal"])

    def _fire(self, fault: Fault, route: Route, req: Request, ids: list[str]) -> Response | None:
        if fault.kind == "429":
            retry = str(fault.opts["retry_after"])
            return error_response(429, ERRORS["rate_limited"], {"Retry-After": retry})
        if fault.kind == "hang":
            self.stopping.wait(fault.opts["hang_s"])
            if fault.opts["then"] == "504" and not self.stopping.is_set():
                return error_response(504, HTTPStatus.GATEWAY_TIMEOUT.phrase + ".")
            return None
        if fault.kind == "ambiguous_create":
            # A refusal propagates as itself: a request that was not performed is not ambiguous.
            performed = route.handler(self.store, req, ids)
            answer = error_response(500, ERRORS["internal"])
            answer.note = f"performed for real (would have answered {performed.status})"
            return answer
        if fault.kind == "refuse":
            return error_response(fault.opts["status"], ERRORS[fault.opts["error"]])
        code = int(fault.kind)
        phrase = HTTPStatus(code).phrase if code in HTTPStatus._value2member_map_ else "Error"
        return error_response(code, phrase + ".")

    def _record(self, req: Request, seen: _Seen, answer: Answer | None) -> None:
        self.log.record(
            t=self.store.now(), method=req.method, path=req.path,
            route=seen.route.template if seen.route else None,
            query={k: v[0] for k, v in req.query.items() if v},
            status=answer.status if answer else None, mutating=req.method in MUTATING_METHODS,
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
