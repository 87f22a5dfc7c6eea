"""What a ``requests`` failure means for the transport: worth a retry (a
:class:`~launcher.vultr.retry.FailureKind`), or :class:`Broken` and said in words."""

from __future__ import annotations

from dataclasses import dataclass

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from .retry import FailureKind


@dataclass(frozen=True)
class Broken:
    """A request that failed in a way no retry can fix (bad URL, TLS failure)."""

    name: str
    detail: str = ""
    hint: str | None = None


SSL_REASONS = {"wrong version number": "the server does not speak TLS",
               "record layer failure": "the server does not speak TLS",
               "certificate verify failed": "the server's certificate is not trusted"}


def broken(exc: requests.RequestException, where: str, base_url: str) -> Broken:
    """A failure no retry fixes, said in words: for TLS, what went wrong with ``where``."""
    name = type(exc).__name__
    if not isinstance(exc, requests.exceptions.SSLError):
        return Broken(name)
    text = str(exc).lower()
    reason = next((why for marker, why in SSL_REASONS.items() if marker in text),
                  "the TLS handshake failed")
    hint = None
    if reason == SSL_REASONS["wrong version number"]:
        plain = base_url.replace("https://", "http://", 1)
        hint = (f"it may speak plain http (the emulator does): VULTR_API_URL={plain} "
                "(plain http is accepted only for a loopback host)")
    elif reason == SSL_REASONS["certificate verify failed"]:
        hint = ("a proxy that intercepts TLS needs its CA: set REQUESTS_CA_BUNDLE to its "
                "certificate file")
    return Broken(name, f"https to {where} failed: {reason}", hint)


def classify(exc: requests.RequestException) -> FailureKind | None:
    """Map a ``requests`` failure to a kind; None when it must not be retried."""
    if isinstance(exc, requests.exceptions.SSLError):
        return None
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return FailureKind.CONNECT
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return FailureKind.READ_TIMEOUT
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        if isinstance(reason, (NewConnectionError, ConnectTimeoutError)):
            return FailureKind.CONNECT
        return FailureKind.DROPPED
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return FailureKind.DROPPED
    return None
