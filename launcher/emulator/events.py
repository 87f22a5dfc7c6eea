"""What the emulator records about traffic: an event log and exchanges for listeners.

Neither ever holds the API key: events keep no header values at all, and an exchange's
``Authorization`` header is replaced by ``Bearer <redacted>`` (keeping only the scheme, which
a contract validator needs to see that the call was authenticated).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REDACTED_BEARER = "Bearer <redacted>"


@dataclass(frozen=True)
class Event:
    """One request as the emulator saw it.

    ``t`` is the emulator clock; ``route`` the matched template ("/instances/{id}") or None;
    ``query`` maps each query parameter to its first value; ``status`` is None when the
    connection was dropped; ``authorized`` means the request carried an accepted key (from an
    address its allowlist admits), ``key`` that key's name (``main``, or the name given to
    ``Emulator.add_key``), never the key; ``fault`` names an injected fault that fired;
    ``note`` records side effects such as a reboot.
    """

    seq: int
    t: float
    method: str
    path: str
    route: str | None
    query: dict[str, str]
    status: int | None
    mutating: bool
    authorized: bool
    fault: str | None = None
    note: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class Exchange:
    """One answered request/response pair, as bytes on the wire (key redacted)."""

    method: str
    path: str
    query: dict[str, list[str]]
    request_headers: dict[str, str]
    request_body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes
    route: str | None


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers`` whose Authorization value no longer holds the credential."""
    return {name: (REDACTED_BEARER if name.lower() == "authorization" else value)
            for name, value in headers.items()}


class EventLog:
    """An append-only, thread-safe list of :class:`Event`."""

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._lock = threading.Lock()

    def record(self, **fields: object) -> Event:
        """Append an event; ``seq`` is assigned here, counting from 1."""
        with self._lock:
            event = Event(seq=len(self._events) + 1, **fields)  # type: ignore[arg-type]
            self._events.append(event)
            return event

    def snapshot(self) -> list[Event]:
        """A copy of every event so far, oldest first."""
        with self._lock:
            return list(self._events)
