"""The supervisor's sign of life: the ``heartbeat`` file the watchdog reads, touched from a
thread, and the status upload training triggers every ``spec.heartbeat_s``."""

from __future__ import annotations

import threading
from collections.abc import Callable

from launcher.runner.context import Context
from launcher.runner.statefiles import StateDir


class Heartbeat:
    """Touches ``heartbeat`` every ``interval`` seconds from a daemon thread until stopped;
    :meth:`beat` (handed to training) also uploads the status every ``heartbeat_s``."""

    def __init__(self, ctx: Context, state: StateDir, upload: Callable[[Context], None],
                 interval: float) -> None:
        self._ctx, self._state, self._upload = ctx, state, upload
        self._interval = interval
        self._stop = threading.Event()
        self._last_upload = float("-inf")
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._touch()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._touch()

    def _touch(self) -> None:
        try:
            self._state.touch_heartbeat()
        except OSError as exc:
            self._ctx.log(f"heartbeat: {exc}")

    def beat(self) -> None:
        self._touch()
        now = self._ctx.clock()
        if now - self._last_upload >= self._ctx.spec.heartbeat_s:
            self._last_upload = now
            try:
                self._upload(self._ctx)
            except Exception as exc:  # a missed heartbeat upload must not stop training
                self._ctx.log(f"heartbeat upload failed: {type(exc).__name__}: {exc}")
