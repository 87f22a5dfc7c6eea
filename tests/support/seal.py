"""The suite's seal: credentials scrubbed, nothing but loopback reachable."""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest

SEALED_PREFIXES = ("VULTR_", "B2_", "AWS_", "WANDB_")
PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy"}
ENV_FILE_VARIABLE = "LAUNCHER_ENV_FILE"


class NetworkSealed(AssertionError):
    """A test tried to reach an address that is not loopback."""


def _is_loopback(host: object) -> bool:
    if not isinstance(host, str):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _guard_address(family: int, address: object) -> None:
    if family == getattr(socket, "AF_UNIX", None):
        return
    host = address[0] if isinstance(address, tuple) else address
    if not _is_loopback(host):
        raise NetworkSealed(f"tests may only reach loopback, not {host!r}")


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _sealed_connect(self, address):
    _guard_address(self.family, address)
    return _real_connect(self, address)


def _sealed_connect_ex(self, address):
    _guard_address(self.family, address)
    return _real_connect_ex(self, address)


def _sealed_getaddrinfo(host, *args, **kwargs):
    if host is not None and not _is_loopback(host if isinstance(host, str) else host.decode()):
        raise NetworkSealed(f"tests may only resolve loopback names, not {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


def _scrub_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(SEALED_PREFIXES) or name.lower() in PROXY_VARS:
            monkeypatch.delenv(name, raising=False)
    # The launcher reads keys from ./.env too: point it at an empty file so a developer's
    # real .env never reaches a test (tests of the .env lookup unset this themselves).
    monkeypatch.setenv(ENV_FILE_VARIABLE, os.devnull)



def seal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scrub credentials and proxies; make non-loopback connections fail loudly."""
    _scrub_environment(monkeypatch)
    monkeypatch.setattr(socket.socket, "connect", _sealed_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _sealed_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", _sealed_getaddrinfo)
