"""Settings of the Vultr API layer, read from the environment.

``VULTR_API_URL`` (default ``https://api.vultr.com/v2``), ``VULTR_KEY`` (the API key),
``VULTR_CONNECT_TIMEOUT`` and ``VULTR_READ_TIMEOUT`` (seconds; one attempt may take 60 s in
all, or a connect and a read timeout when that is longer). A missing key is not an error
here: public endpoints need none, and a call that needs one raises ``ConfigError`` naming
``VULTR_KEY``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from launcher.errors import ConfigError
from launcher.secrets import Secret

from .jsonhttp import Timeouts
from .transport import DEFAULT_API_URL

KEY_VARIABLE = "VULTR_KEY"


LINK_LOCAL = ipaddress.ip_network("169.254.0.0/16")


def _plain_http_ok(host: str, link_local: bool) -> bool:
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or (link_local and address in LINK_LOCAL)


def validate_api_url(url: str, variable: str = "VULTR_API_URL", *,
                     link_local: bool = False) -> str:
    """Return ``url`` without a trailing slash, or raise ConfigError.

    It must be https with a host and no credentials, query or fragment; plain http is accepted
    only for a loopback host (the emulator), so a key never crosses a network in clear, and
    with ``link_local`` also for 169.254.0.0/16 (an emulator's forward as a guest VM sees it).
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ConfigError(f"{variable} is not a valid URL: {url!r}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(f"{variable} must be an http(s) URL with a host, not {url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError(f"{variable} must not carry credentials, a query or a fragment")
    if parts.scheme == "http" and not _plain_http_ok(host, link_local):
        also = " or a 169.254.x.x address (an emulator whose machines are VMs)" \
            if link_local else " (the emulator)"
        raise ConfigError(f"{variable} uses plain http for {host!r}: a key would travel in "
                          "clear", hint=f"use https, or http only for 127.0.0.1 / localhost"
                          f"{also}")
    return url.strip().rstrip("/")


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 600:
        raise ConfigError(f"{name} must be a number of seconds in (0, 600], not {raw!r}")
    return value


def timeouts_from_env(environ: Mapping[str, str], prefix: str) -> Timeouts:
    """``<prefix>_CONNECT_TIMEOUT`` and ``<prefix>_READ_TIMEOUT`` (seconds) over the defaults;
    an attempt may always take a whole connect and read timeout."""
    defaults = Timeouts()
    connect = _seconds(environ, f"{prefix}_CONNECT_TIMEOUT", defaults.connect)
    read = _seconds(environ, f"{prefix}_READ_TIMEOUT", defaults.read)
    return Timeouts(connect=connect, read=read, attempt=max(defaults.attempt, connect + read))


@dataclass(frozen=True)
class VultrSettings:
    """Where the API is, the key (a Secret, or None) and the HTTP timeouts."""

    api_url: str = DEFAULT_API_URL
    api_key: Secret | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> VultrSettings:
        env = os.environ if environ is None else environ
        key = env.get(KEY_VARIABLE, "").strip()
        return cls(
            api_url=validate_api_url(env.get("VULTR_API_URL", "") or DEFAULT_API_URL),
            api_key=Secret(key) if key else None,
            timeouts=timeouts_from_env(env, "VULTR"),
        )
