"""How long the emulated resources take to change state, and a clock tests can drive.

State is never advanced by a background thread: every read computes the status from the time
elapsed since the resource was created, so a :class:`ManualClock` makes transitions exact.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Timing:
    """Seconds (on the emulator's clock) each transition takes, counted from creation.

    ``server_booting_s`` is when ``server_status`` goes none→installingbooting and
    ``server_ok_s`` when it reaches ok; an instance is "locked" (attach refused) until it is
    ok and for ``locked_after_create_s`` after create / ``locked_after_attach_s`` after an
    attach or detach. An attach is accepted at once but shows in the volume's
    ``attached_to_instance`` only ``attach_visible_s`` later (asynchronous on Vultr: vultr-csi
    reads the volume back each second, 15 times, until it does); a new volume's ``mount_id``
    reads empty for ``block_mount_id_s`` (0 here: no source says it ever does, but the
    launcher reads it back until it is set, and tests raise this to prove it).
    """

    instance_active_s: float = 1.0
    server_booting_s: float = 1.0
    server_ok_s: float = 3.0
    block_active_s: float = 1.0
    snapshot_complete_s: float = 3.0
    locked_after_create_s: float = 3.0
    locked_after_attach_s: float = 1.0
    attach_visible_s: float = 1.0
    block_mount_id_s: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) < 0:
                raise ValueError(f"Timing.{f.name} must not be negative")
        if self.server_booting_s > self.server_ok_s:
            raise ValueError("Timing.server_booting_s must not exceed server_ok_s")

    @classmethod
    def instant(cls) -> Timing:
        """Every transition done at creation: resources are active/ok on first read."""
        return cls(*(0.0 for _ in fields(cls)))

    @classmethod
    def realistic(cls) -> Timing:
        """A few seconds each (≤ 3 s), enough to exercise waits in an offline demo."""
        return cls()


class ManualClock:
    """A clock that only moves when told to: ``clock()`` reads it, ``advance(s)`` moves it."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (never back) and return the new time."""
        if seconds < 0:
            raise ValueError("a ManualClock cannot go back")
        with self._lock:
            self._now += seconds
            return self._now
