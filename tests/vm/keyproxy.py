"""A loopback TCP proxy in front of the S3 server whose key can be revoked mid-run.

Until :meth:`KeyProxy.revoke`, every connection is relayed to the S3 server byte for byte.
After it, open connections are cut and every new request is answered as B2 answers a
deleted application key: ``403`` with an S3 ``InvalidAccessKeyId`` error. The launcher's own
commands talk to the S3 server directly, so only the instance loses its bucket.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit

CHUNK = 65536
HEAD_LIMIT = 65536
IO_TIMEOUT_S = 120.0
DENIED_BODY = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidAccessKeyId</Code>'
               b"<Message>The key was revoked.</Message></Error>")
DENIED = (b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nConnection: close\r\n"
          b"Content-Length: " + str(len(DENIED_BODY)).encode() + b"\r\n\r\n" + DENIED_BODY)


class KeyProxy:
    """Listens on 127.0.0.1 (``url``); relays to ``upstream_url``. Stop with :meth:`close`."""

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.revoked = threading.Event()
        self.denied = 0
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(1.0)
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True, name="keyproxy")
        self._thread.start()

    def revoke(self) -> None:
        """From now on the bucket refuses the key; cut what is open."""
        self.revoked.set()
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closing.set()
        self.revoke()
        self._thread.join(5.0)
        self._server.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(IO_TIMEOUT_S)
            target = self._deny if self.revoked.is_set() else self._relay
            threading.Thread(target=target, args=(client,), daemon=True).start()

    def _deny(self, client: socket.socket) -> None:
        with client:
            head = b""
            with contextlib.suppress(OSError):
                while b"\r\n\r\n" not in head and len(head) < HEAD_LIMIT:
                    chunk = client.recv(CHUNK)
                    if not chunk:
                        return
                    head += chunk
                with self._lock:  # counted before the answer: a client that has it may look
                    self.denied += 1
                client.sendall(DENIED)

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=IO_TIMEOUT_S)
        except OSError:
            client.close()
            return
        with self._lock:
            self._open.update((client, upstream))
        pump = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        pump.start()
        _pump(client, upstream)
        pump.join(IO_TIMEOUT_S)
        with self._lock:
            self._open.difference_update((client, upstream))
        client.close()
        upstream.close()


def _pump(source: socket.socket, dest: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while True:
            data = source.recv(CHUNK)
            if not data:
                break
            dest.sendall(data)
    with contextlib.suppress(OSError):
        dest.shutdown(socket.SHUT_WR)
