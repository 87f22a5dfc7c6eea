"""Servers on 127.0.0.1 that never let a call finish, each started and stopped by its test.

- :func:`silent_server`: accepts every connection, reads what is sent, never answers.
- :func:`drip_server`: answers HTTP 200 with a long body, one byte every ``interval_s``, so no
  single read waits long enough to trip a per-read timeout.

Both yield the port; on exit every socket they hold is closed and their threads end.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

DRIP_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
             b"Content-Length: 100000\r\n\r\n")
# HTTP/1.0 without keep-alive: http.client lets go of the connection's socket once the head
# is read, so cutting must reach the socket itself.
CLOSING_HEAD = (b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
                b"Connection: close\r\nContent-Length: 100000\r\n\r\n")


class _Stall:
    def __init__(self, drip_s: float | None, head: bytes = DRIP_HEAD,
                 head_at_once: bool = False) -> None:
        self.drip_s = drip_s
        self.head, self.head_at_once = head, head_at_once
        self.stop = threading.Event()
        self.accepted: list[socket.socket] = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            self.accepted.append(conn)
            if self.drip_s is not None:
                thread = threading.Thread(target=self._drip, args=(conn,), daemon=True)
                self.threads.append(thread)
                thread.start()

    def _drip(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.settimeout(1.0)
            conn.recv(65536)
            dripped = self.head + b" " * 100000
            if self.head_at_once:
                conn.sendall(self.head)
                dripped = dripped[len(self.head):]
            for byte in dripped:
                if self.stop.wait(self.drip_s):
                    return
                conn.sendall(bytes([byte]))

    def close(self) -> None:
        self.stop.set()
        for thread in list(self.threads):
            thread.join(timeout=5)
        self.listener.close()
        for conn in self.accepted:
            conn.close()


@contextlib.contextmanager
def _serving(drip_s: float | None, **options: object) -> Iterator[int]:
    stall = _Stall(drip_s, **options)  # type: ignore[arg-type]
    stall.threads[0].start()
    try:
        yield stall.port
    finally:
        stall.close()


def silent_server() -> contextlib.AbstractContextManager[int]:
    """A port on 127.0.0.1 that accepts connections and never answers."""
    return _serving(None)


def drip_server(interval_s: float = 1.0, *, head: bytes = DRIP_HEAD,
                head_at_once: bool = False) -> contextlib.AbstractContextManager[int]:
    """A port on 127.0.0.1 that answers one byte every ``interval_s`` (with
    ``head_at_once``, the whole head first, then the body a byte at a time)."""
    return _serving(interval_s, head=head, head_at_once=head_at_once)
