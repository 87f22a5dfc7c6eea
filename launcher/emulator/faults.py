"""Fault injection: make the next N calls of one route fail in a chosen way.

Kinds: an HTTP status string "500".."599" (answered without doing anything), "429" (with a
``Retry-After`` of ``retry_after`` seconds, default 1), "hang" (the handler blocks for ``hang_s``
seconds, default 30, at most 300, released early by ``Emulator.stop()``; then the connection is
dropped, or answered 504 with ``then="504"``), "ambiguous_create" (the request is performed
for real, then answered 500: the client cannot tell whether it happened) and "refuse" (answered
``status``, default 400, with the text of ``error``, a key of :data:`ERRORS`, without doing
anything: Vultr's wordings that the emulator's state does not produce by itself, such as
"Server is currently locked" as a 500, or a gone instance's "invalid instance ID").
A :class:`FaultPlan` is made per emulator with its provider's route keys, error table and
path prefix; the Vast emulator's 429 sends no ``Retry-After`` unless one is given.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from launcher.emulator.errors import ERRORS

MAX_HANG_S = 300.0
_OPTS = {"429": {"retry_after"}, "hang": {"hang_s", "then"}, "ambiguous_create": set(),
         "refuse": {"status", "error"}}
KINDS_TEXT = "500..599, 429, hang, ambiguous_create, refuse"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def route_key(route: str, prefix: str = "/v2") -> str:
    """``"get /v2/instances/{instance-id}"`` → ``"GET /instances/{id}"`` (``prefix`` dropped)."""
    method, _, path = route.strip().partition(" ")
    path = path.strip()
    if path.startswith(prefix + "/"):
        path = path[len(prefix):]
    return f"{method.upper()} {re.sub(r'{[^}/]*}', '{id}', path)}"


@dataclass(frozen=True)
class Fault:
    """One armed fault: ``remaining`` more calls of ``route`` will get ``kind``."""

    route: str
    kind: str
    remaining: int
    opts: dict = field(default_factory=dict)


def check_kind(kind: str) -> None:
    """Raise ValueError, naming the kinds there are, unless ``kind`` is one of them."""
    if kind not in _OPTS and not (kind.isdigit() and 500 <= int(kind) <= 599):
        raise ValueError(f"unknown fault kind {kind!r}: one of {KINDS_TEXT}")


def _check_opts(kind: str, opts: dict, errors: Mapping[str, object] = ERRORS,
                retry_after_default: int | None = 1) -> dict:
    check_kind(kind)
    allowed = _OPTS.get(kind, set())
    extra = set(opts) - allowed
    if extra:
        takes = ", ".join(sorted(allowed)) or "none"
        raise ValueError(f"fault {kind!r} takes no option(s) {sorted(extra)} "
                         f"(its options: {takes})")
    if kind == "429":
        retry_after = opts.get("retry_after", retry_after_default)
        if retry_after is None:
            return {}
        if not _is_int(retry_after) or retry_after < 1:
            raise ValueError("retry_after must be an integer >= 1")
        return {"retry_after": retry_after}
    if kind == "hang":
        hang_s, then = opts.get("hang_s", 30.0), opts.get("then", "drop")
        if not isinstance(hang_s, (int, float)) or isinstance(hang_s, bool) \
                or not 0 < hang_s <= MAX_HANG_S or then not in ("drop", "504"):
            raise ValueError(f"hang needs 0 < hang_s <= {MAX_HANG_S:g} and then in drop|504")
        return {"hang_s": float(hang_s), "then": then}
    if kind == "refuse":
        status, error = opts.get("status", 400), opts.get("error")
        if not _is_int(status) or not 400 <= status <= 599 or error not in errors:
            raise ValueError("refuse needs status 400..599 and error, one of "
                             f"{sorted(errors)}")
        return {"status": status, "error": error}
    return {}


class FaultPlan:
    """Armed faults, consumed first-in first-out per route. Thread-safe."""

    def __init__(self, known_routes: set[str], errors: Mapping[str, object] = ERRORS,
                 retry_after_default: int | None = 1, prefix: str = "/v2") -> None:
        self._known = known_routes
        self._errors = errors
        self._retry_after_default = retry_after_default
        self._prefix = prefix
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def check_route(self, route: str) -> str:
        """The key of ``route`` ("METHOD /template"); ValueError naming the known ones."""
        key = route_key(route, self._prefix)
        if key not in self._known:
            raise ValueError(f"no such route {route!r} (known: {', '.join(sorted(self._known))})")
        return key

    def inject(self, route: str, kind: str, count: int = 1, **opts: object) -> Fault:
        """Arm ``kind`` for the next ``count`` calls of ``route`` ("METHOD /template")."""
        key = self.check_route(route)
        if count < 1:
            raise ValueError("count must be at least 1")
        checked = _check_opts(kind, dict(opts), self._errors, self._retry_after_default)
        fault = Fault(key, kind, count, checked)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, key: str) -> Fault | None:
        """Consume one call of the first fault armed for ``key``, if any."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.route == key:
                    if fault.remaining == 1:
                        del self._faults[index]
                    else:
                        self._faults[index] = replace(fault, remaining=fault.remaining - 1)
                    return fault
        return None

    def pending(self) -> list[Fault]:
        """Faults still armed, in the order they will fire."""
        with self._lock:
            return list(self._faults)

    def clear(self) -> int:
        """Disarm every fault; how many were armed."""
        with self._lock:
            count, self._faults = len(self._faults), []
        return count
