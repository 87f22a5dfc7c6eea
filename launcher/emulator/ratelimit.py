"""Per-client-IP request rate limiting, like Vultr's "more than 30 requests per second → 429".

It runs on its own clock (real ``time.monotonic`` by default), apart from the emulator's state
clock: a test that freezes resource states with a ``ManualClock`` must not also freeze the rate
window, and a rate-limit test can pass its own clock to drive the window exactly.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RateLimit:
    """At most ``per_second`` accepted requests per client IP in any ``window_s`` window.

    ``per_second=None`` disables the limit. Refused requests do not count, so a client that
    waits ``Retry-After`` seconds always gets through.
    """

    per_second: int | None = 30
    window_s: float = 1.0
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    def __post_init__(self) -> None:
        if self.per_second is not None and self.per_second < 1:
            raise ValueError("RateLimit.per_second must be at least 1 (or None to disable)")
        if self.window_s <= 0:
            raise ValueError("RateLimit.window_s must be positive")


class Limiter:
    """A sliding-window counter per client address."""

    def __init__(self, config: RateLimit) -> None:
        self._config = config
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, client: str) -> int | None:
        """Record a request; ``None`` when admitted, else the Retry-After seconds (≥ 1)."""
        limit = self._config.per_second
        if limit is None:
            return None
        now = self._config.clock()
        with self._lock:
            hits = self._hits.setdefault(client, deque())
            while hits and hits[0] <= now - self._config.window_s:
                hits.popleft()
            if len(hits) >= limit:
                return max(1, math.ceil(hits[0] + self._config.window_s - now))
            hits.append(now)
            return None
