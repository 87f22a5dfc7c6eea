"""Waiting out loud: while one call is outstanding, a line on stderr every few seconds, and a
deadline that ends the call.

The one request path of the API clients (:mod:`launcher.vultr.jsonhttp`) and the one place
the launcher runs s5cmd (:mod:`launcher.bucket`) wrap each call in a :class:`Watch`, so every
command that waits on the network says what it waits for and on which ``host:port``, with or
without a terminal (``still waiting for 127.0.0.1:8765 (GET /instances), 10 s``).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

PROGRESS_EVERY_S = 5.0
DEFAULT_PORTS = {"https": 443, "http": 80}


def stderr_line(text: str) -> None:
    """Write one line on the current ``sys.stderr`` (looked up per line: rich's live display
    swaps it); a closed or broken stderr does not break the call being watched."""
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


@dataclass(frozen=True)
class ProgressLines:
    """How often a watched call says it is still waiting, and where the line goes."""

    every_s: float = field(default_factory=lambda: PROGRESS_EVERY_S)
    write: Callable[[str], None] = stderr_line

    def __post_init__(self) -> None:
        if not self.every_s > 0:
            raise ValueError("every_s must be positive")


def endpoint(url: str) -> str:
    """``host:port`` of ``url`` (the scheme's default port when it names none), for messages."""
    parts = urlsplit(url)
    host = parts.hostname or url
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or DEFAULT_PORTS.get(parts.scheme)
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}" if port else host


class Watch:
    """One outstanding call, watched while the ``with`` block runs.

    Every ``lines.every_s`` it writes ``still waiting for <what>, <n> s``. :meth:`arm` sets a
    deadline: when it passes, ``on_expire`` is called once (from the watching thread, under
    its lock, so it must be quick: cut a connection, not wait on one) and :attr:`expired`
    turns True; once :meth:`disarm` returns it can no longer be called. One daemon thread
    watches every Watch, so a call costs no thread start.
    """

    def __init__(self, what: str, lines: ProgressLines | None = None) -> None:
        self.what = what
        self.lines = lines or ProgressLines()
        self.expired = False
        self.started = time.monotonic()
        self.next_line = self.started + self.lines.every_s
        self.expire_at: float | None = None
        self.on_expire: Callable[[], None] | None = None

    def __enter__(self) -> Watch:
        self.started = time.monotonic()
        self.next_line = self.started + self.lines.every_s
        _WATCHER.add(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _WATCHER.remove(self, keep=False)

    def arm(self, seconds: float, on_expire: Callable[[], None]) -> None:
        """Call ``on_expire`` once ``seconds`` from now unless :meth:`disarm` comes first."""
        _WATCHER.arm(self, time.monotonic() + seconds, on_expire)

    def disarm(self) -> None:
        """No ``on_expire`` after this returns; :attr:`expired` keeps saying if it came."""
        _WATCHER.remove(self, keep=True)


class _Watcher:
    """The one thread that writes every Watch's lines and fires its deadline. It is woken
    only when an event comes before the one it sleeps until (``_planned``; None: none), so
    the calls it watches rarely wait on it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._watches: set[Watch] = set()
        self._thread: threading.Thread | None = None
        self._planned: float | None = None

    def add(self, watch: Watch) -> None:
        with self._cond:
            self._watches.add(watch)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="launcher-watch",
                                                daemon=True)
                self._thread.start()
            self._wake_by(watch.next_line)

    def remove(self, watch: Watch, *, keep: bool) -> None:
        """Forget ``watch``'s deadline, and with ``keep`` False the watch itself."""
        with self._cond:
            if not keep:
                self._watches.discard(watch)
            watch.expire_at, watch.on_expire = None, None

    def arm(self, watch: Watch, at: float, on_expire: Callable[[], None]) -> None:
        with self._cond:
            watch.expired = False
            watch.expire_at, watch.on_expire = at, on_expire
            self._wake_by(at)

    def _wake_by(self, at: float) -> None:
        if self._planned is None or at < self._planned:
            self._planned = at
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                lines = [w for w in self._watches if w.next_line <= now]
                for watch in self._watches:
                    if watch.expire_at is not None and watch.expire_at <= now:
                        callback, watch.on_expire, watch.expire_at = watch.on_expire, None, None
                        watch.expired = True
                        if callback is not None:
                            callback()
                for watch in lines:
                    while watch.next_line <= now:
                        watch.next_line += watch.lines.every_s
                wakes = [t for w in self._watches for t in (w.next_line, w.expire_at)
                         if t is not None]
                if not lines:
                    self._planned = min(wakes) if wakes else None
                    self._cond.wait(None if self._planned is None else self._planned - now)
            for watch in lines:
                watch.lines.write(f"still waiting for {watch.what}, "
                                  f"{now - watch.started:.0f} s")


_WATCHER = _Watcher()
