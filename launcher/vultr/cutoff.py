"""Connections that can be cut when a call's time is up.

``requests``' read timeout is per read: a server that drips its answer a byte at a time never
trips it. The transport therefore gives each attempt a deadline (a
:class:`~launcher.waiting.Watch`), and this module lets the watching thread end the attempt:
while :func:`tracking` is active on a thread, every urllib3 connection that thread connects or
sends on is noted, with its socket, and :func:`cut` shuts those sockets down, so the blocked
read returns at once and ``requests`` raises as for a dropped connection. The socket is noted
itself because ``http.client`` lets go of a connection's socket once it has read the head of
an answer that closes the connection (HTTP/1.0, ``Connection: close``): the body is then read
from a socket the connection no longer names.

Only sessions made by :func:`cuttable_session` note their connections (through urllib3's
public pool classes); with another session, or a SOCKS proxy, an attempt still ends by its
per-read timeouts.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_local = threading.local()


def _note(item: HTTPConnection | socket.socket | None) -> None:
    noted = getattr(_local, "connections", None)
    if noted is not None and item is not None and item not in noted:
        noted.append(item)


class _Noting:
    """Notes the connection, and its socket, each time it connects or sends a request."""

    def connect(self) -> None:
        _note(self)  # type: ignore[arg-type]
        super().connect()  # type: ignore[misc]
        _note(getattr(self, "sock", None))

    def request(self, *args: Any, **kwargs: Any) -> None:
        _note(self)  # type: ignore[arg-type]
        super().request(*args, **kwargs)  # type: ignore[misc]
        _note(getattr(self, "sock", None))


class _NotedHTTPConnection(_Noting, HTTPConnection):
    pass


class _NotedHTTPSConnection(_Noting, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _NotedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _NotedHTTPSConnection


POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class _CuttableAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = dict(POOLS)
        return manager


def cuttable_session() -> requests.Session:
    """A ``requests.Session`` whose connections :func:`tracking` can note."""
    session = requests.Session()
    adapter = _CuttableAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


@contextlib.contextmanager
def tracking() -> Iterator[list[HTTPConnection | socket.socket]]:
    """Note the connections (and their sockets) this thread uses inside the block (the list
    it yields)."""
    noted: list[HTTPConnection | socket.socket] = []
    _local.connections = noted
    try:
        yield noted
    finally:
        _local.connections = None


def cut(connections: list[HTTPConnection | socket.socket]) -> None:
    """Shut down the noted sockets and those of the noted connections (safe from another
    thread; a socket already closed is skipped)."""
    for item in list(connections):
        sock = item if isinstance(item, socket.socket) else getattr(item, "sock", None)
        if sock is None:
            continue
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
