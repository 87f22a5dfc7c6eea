"""The suite's one fake clock: monotonic time that moves only when something sleeps on it."""

from __future__ import annotations

from collections.abc import Callable, Iterable


class FakeClock:
    """Read it by calling it (or :meth:`clock`); :meth:`sleep` records the seconds, moves the
    time on, then runs ``on_sleep[n]`` at the n-th sleep (n from 0), if there is one: a
    test's way to change the world between two polls."""

    def __init__(self, on_sleep: Iterable[Callable[[], object]] = (), start: float = 0.0):
        self.now = float(start)
        self.sleeps: list[float] = []
        self.on_sleep = list(on_sleep)

    def __call__(self) -> float:
        return self.now

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps.append(seconds)
        if len(self.sleeps) <= len(self.on_sleep):
            self.on_sleep[len(self.sleeps) - 1]()
