"""What the emulator's machine backends (:class:`~launcher.sandbox.ProcessHypervisor`, and the
QEMU backend of the end-to-end tests) share: reading their machines' states, and waiting for one.

A backend keeps its machines in a dict under ``self._lock``, in creation order, and turns one
into its public, frozen view with ``_view``; :class:`MachineViews` adds ``machines()``,
``machine(id)`` and ``wait(id, timeout, states)`` on top.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Generic, Protocol, TypeVar

FIRST_LOOK_S = 0.05
LOOK_GROWTH = 1.5
LONGEST_LOOK_S = 0.5


class _HasState(Protocol):
    @property
    def state(self) -> str: ...


V = TypeVar("V", bound=_HasState)


class MachineViews(Generic[V]):
    """``machines()``, ``machine(id)`` and ``wait(...)`` over ``self._entries`` (a dict of the
    backend's machines by instance id) and ``self._view(entry)``; ``final_states`` are the
    states a machine never leaves."""

    _lock: threading.Lock
    final_states: tuple[str, ...] = ()

    @property
    def _entries(self) -> dict[str, Any]:
        raise NotImplementedError

    def _view(self, entry: Any) -> V:
        raise NotImplementedError

    def machines(self) -> list[V]:
        """Every machine so far, in creation order."""
        with self._lock:
            entries = list(self._entries.values())
        return [self._view(e) for e in entries]

    def machine(self, instance_id: str) -> V:
        """One machine (KeyError if the backend never saw that instance)."""
        with self._lock:
            entry = self._entries[instance_id]
        return self._view(entry)

    def wait(self, instance_id: str, timeout: float,
             states: tuple[str, ...] | None = None) -> V:
        """Look (backing off from 50 ms to 0.5 s) until the machine is in one of ``states``
        (default: a final state) or ``timeout`` seconds pass; its state then (check it: a
        timeout does not raise)."""
        states = states or self.final_states
        deadline = time.monotonic() + timeout
        delay = FIRST_LOOK_S
        while True:
            view = self.machine(instance_id)
            left = deadline - time.monotonic()
            if view.state in states or left <= 0:
                return view
            time.sleep(min(delay, left))
            delay = min(delay * LOOK_GROWTH, LONGEST_LOOK_S)
