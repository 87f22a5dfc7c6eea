"""Vultr's error envelope ``{"error": "...", "status": N}`` mapped onto :mod:`launcher.errors`.

Pure functions: they see a status and the body's text, never the request, its headers or its
body, so nothing secret can reach an exception from here except what the server echoed, and
that is scrubbed with :func:`launcher.secrets.redact` first.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus

from launcher.errors import (
    ApiError,
    AuthError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    OutOfCapacityError,
    RateLimitedError,
    TransientError,
)
from launcher.runner.retry import GONE, LOCKED
from launcher.secrets import Secret, redact

from .retry import FailureKind, Outcome

AUTH_HINT = (
    "Vultr refused the API key. Check that VULTR_KEY is current (keys can expire) and that "
    "this machine's public IP is on the key's API allowlist (my.vultr.com: Account > API > "
    "Access Control; every sub-user has its own allowlist and ACLs)."
)

# Lower-case phrases Vultr uses when a plan cannot be had in a region right now.
CAPACITY_PHRASES = (
    "not available in the selected region",
    "plan is not available",
    "out of stock",
    "sold out",
    "insufficient capacity",
    "no available",
)
# Vultr's words for a busy instance and a gone one (launcher/runner/retry.py keeps them for
# both clients; docs/emulator.md cites each): busy is a conflict, gone is not found.
CONFLICT_PHRASES = LOCKED

MAX_MESSAGE = 300


class UnconfirmedWriteError(TransientError):
    """A mutating request failed after it may have reached the server (timeout, dropped, 5xx).

    The change may or may not have happened; :mod:`launcher.vultr.mutations` resolves it by
    reading the resource back. ``outcome`` is the failed attempt.
    """

    def __init__(self, message: str, *, outcome: Outcome, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.outcome = outcome


def server_message(body: bytes, status: int, *secrets: Secret | str | None) -> str:
    """The human part of an error body: the envelope's ``error``, else the text, else the phrase."""
    text = body.decode("utf-8", errors="replace").strip()
    message = ""
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    if isinstance(data, dict) and "error" in data:
        error = data["error"]
        message = error.get("message", "") if isinstance(error, dict) else str(error)
    elif text:
        message = re.sub(r"<[^>]*>", " ", text)  # a proxy's HTML page: keep only the words
    message = " ".join(str(message).split())
    if not message:
        try:
            message = HTTPStatus(status).phrase
        except ValueError:
            message = "no error message"
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + "..."
    return redact(message, *secrets)


def error_for_status(
    method: str,
    path: str,
    status: int,
    message: str,
    *,
    retry_after: float | None = None,
) -> ApiError:
    """The exception for an HTTP error ``status`` whose (already scrubbed) text is ``message``."""
    where = {"method": method, "path": path, "status": status}
    lowered = message.lower()
    if status in (401, 403):
        return AuthError(message, hint=AUTH_HINT, **where)
    if status == 404:
        return NotFoundError(message, **where)
    if status == 429:
        return RateLimitedError(message, retry_after=retry_after, **where)
    if 400 <= status < 500:
        if any(p in lowered for p in GONE):
            return NotFoundError(message, **where)
        if status == 409 or any(p in lowered for p in CONFLICT_PHRASES):
            return ConflictError(message, **where)
        if any(p in lowered for p in CAPACITY_PHRASES):
            return OutOfCapacityError(message, **where)
        return InvalidRequestError(message, **where)
    if status >= 500:
        return TransientError(message, **where)
    return ApiError(f"unexpected response: {message}", **where)


def error_for_failure(method: str, path: str, failure: FailureKind, attempts: int, *,
                      where: str = "", seconds: float | None = None,
                      hint: str | None = None) -> ApiError:
    """The exception for a request that got no HTTP answer at all: the kind of failure, the
    server's ``host:port`` (``where``), the attempts and the seconds they took."""
    server = f" talking to {where}" if where else ""
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    took = f" in {seconds:.0f} s" if seconds is not None and seconds >= 1 else ""
    return TransientError(f"{failure.value}{server}{tries}{took}", method=method, path=path,
                          hint=hint)
