"""A one-connection TCP relay for QEMU's ``guestfwd=...-cmd:`` forwards.

QEMU runs the ``cmd:`` once per guest connection with the connection on stdin/stdout. This
script (run by path with any ``python3``; standard library only, no package imports) joins
that connection to ``127.0.0.1:<port>`` and copies bytes both ways until both sides have
closed, or nothing has moved for ``--idle`` seconds. It only ever connects to loopback.

    python3 relay.py PORT [--idle SECONDS]
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import sys
import time

HOST = "127.0.0.1"
CHUNK = 65536
CONNECT_TIMEOUT_S = 10.0
DEFAULT_IDLE_S = 600.0


def _half_close_stdout() -> None:
    """Tell the guest we are done sending: shut down the socket's write side if stdout is
    one, else close it."""
    try:
        socket.socket(fileno=os.dup(1)).shutdown(socket.SHUT_WR)
    except OSError:
        os.close(1)


def relay(port: int, idle_s: float) -> int:
    """Copy stdin→upstream and upstream→stdout; 0 on a clean end, 1 when upstream is down."""
    try:
        upstream = socket.create_connection((HOST, port), timeout=CONNECT_TIMEOUT_S)
    except OSError as exc:
        sys.stderr.write(f"relay: cannot reach {HOST}:{port}: {exc}\n")
        return 1
    upstream.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(0, selectors.EVENT_READ, "guest")
    sel.register(upstream, selectors.EVENT_READ, "host")
    open_sides = {"guest", "host"}
    last = time.monotonic()
    while open_sides and time.monotonic() - last < idle_s:
        for key, _ in sel.select(timeout=1.0):
            last = time.monotonic()
            if key.data == "guest":
                data = os.read(0, CHUNK)
                if data:
                    upstream.setblocking(True)
                    upstream.sendall(data)
                    upstream.setblocking(False)
                    continue
                sel.unregister(0)
                open_sides.discard("guest")
                upstream.shutdown(socket.SHUT_WR)
            else:
                try:
                    data = upstream.recv(CHUNK)
                except BlockingIOError:
                    continue
                if data:
                    _write_all(data)
                    continue
                sel.unregister(upstream)
                open_sides.discard("host")
                _half_close_stdout()
    upstream.close()
    return 0


def _write_all(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="relay one guest connection to loopback")
    parser.add_argument("port", type=int)
    parser.add_argument("--idle", type=float, default=DEFAULT_IDLE_S)
    args = parser.parse_args(argv)
    try:
        return relay(args.port, args.idle)
    except (BrokenPipeError, ConnectionError):
        return 0


if __name__ == "__main__":
    sys.exit(main())
