"""Vast.ai's error bodies mapped onto :mod:`launcher.errors`.

The shapes, as Vast's API reference gives them (vast-ai/docs
``api-reference/rate-limits-and-errors.mdx``: "Error responses vary slightly by endpoint";
"Some endpoints omit the boolean ``success``. Some omit ``error`` and return only ``msg`` or
``message``"; and the per-endpoint ``api-reference/openapi/yaml/*.yaml``):

- most errors: ``{"success": false, "error": "<code>", "msg": "<text>"}``, sometimes with
  more keys (``"ask_id"`` on a refused create: ``create_instance.yaml``);
- some have no ``success``: ``{"error": "invalid_id", "msg": "Invalid instance id."}``
  (``logs.yaml``, 404);
- rate limits (429): "often plain text" (``API requests too frequent: endpoint
  threshold=...``, rate-limits-and-errors.mdx), ``{"detail": "API requests too frequent
  endpoint threshold=4.5"}`` (``create_instance.yaml``, ``show_instance.yaml``) or the
  ``error``/``msg`` form with ``"error": "rate_limit_exceeded"`` (``destroy_instance.yaml``).
  Vast sends no ``Retry-After`` (rate-limits-and-errors.mdx), so the shared retry table's
  backoff alone paces the retries.

What each means here:

- an offer that is gone: ``no_such_ask`` as the code, or in the text with another code
  (``"error": "invalid_args", "msg": "error 404/3603: no_such_ask Instance type by id ... is
  not available."``), 404 or 410: :class:`OutOfCapacityError`, so a failover moves on;
- a refused key: 401/403, or the code ``auth_error`` / the text "Invalid user key" under any
  status (``search_offers.yaml`` documents a 404 for it): :class:`AuthError`; a 403 whose code
  is ``invalid_args`` ("Offer ... is not your own") is a refused request instead;
- 404 and 410 otherwise: :class:`NotFoundError`; 409: :class:`ConflictError`; 429:
  :class:`RateLimitedError` (the shared retry table has retried it by then); other 4xx:
  :class:`InvalidRequestError`; 5xx: :class:`TransientError`.

Pure functions of the status and the body's text: nothing of the request reaches an exception,
and what the server echoed is scrubbed with :func:`launcher.secrets.redact` first.
"""

from __future__ import annotations

import json
import re

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
from launcher.secrets import Secret, redact

# vast-ai/docs api-reference/authentication.mdx: "a typo, an expired key, or a scoped key
# that lacks the required permission for the endpoint you're calling".
AUTH_HINT = (
    "Vast.ai refused the API key: check VAST_API_KEY for a typo, an expired or revoked key, "
    "or a scoped key without the permission this call needs (https://cloud.vast.ai/manage-keys/)."
)
GONE_OFFER = "no_such_ask"
AUTH_CODES = ("auth_error",)
AUTH_TEXT = "invalid user key"
MAX_MESSAGE = 300
# Status phrases for a body with no words (no import of http: see tests/test_layout.py).
PHRASES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           409: "Conflict", 410: "Gone", 429: "Too Many Requests",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}


def error_parts(body: bytes) -> tuple[str, str]:
    """``(code, text)`` of an error body: the ``error`` code ("" when none) and the human
    text (``msg``, else ``detail``, else a proxy page's words)."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return "", re.sub(r"<[^>]*>", " ", text)  # a proxy's HTML page: keep only the words
    code = data.get("error")
    code = code if isinstance(code, str) else ""
    for key in ("msg", "detail", "message"):
        if isinstance(data.get(key), str) and data[key].strip():
            return code, data[key]
    return code, code


def server_message(body: bytes, status: int, *secrets: Secret | str | None) -> str:
    """One scrubbed line saying what the server said: its text, and its code when the text
    does not already carry it (``Invalid user key (auth_error)``)."""
    code, text = error_parts(body)
    message = " ".join(text.split())
    if code and code not in message:
        message = f"{message} ({code})" if message else code
    if not message:
        message = PHRASES.get(status, "no error message")
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + "..."
    return redact(message, *secrets)


def error_for_status(
    method: str, path: str, status: int, body: bytes, message: str, *,
    retry_after: float | None = None,
) -> ApiError:
    """The exception for an HTTP error ``status`` with this ``body``; ``message`` is its
    already scrubbed text (:func:`server_message`)."""
    where = {"method": method, "path": path, "status": status}
    code, text = error_parts(body)
    lowered = text.lower()
    if status in (404, 410) and (code == GONE_OFFER or GONE_OFFER in lowered):
        return OutOfCapacityError(message, **where)
    if status == 403 and code == "invalid_args":
        return InvalidRequestError(message, **where)
    if status in (401, 403) or code in AUTH_CODES or AUTH_TEXT in lowered:
        return AuthError(message, hint=AUTH_HINT, **where)
    if status in (404, 410):
        return NotFoundError(message, **where)
    if status == 429:
        return RateLimitedError(message, retry_after=retry_after, **where)
    if status == 409:
        return ConflictError(message, **where)
    if 400 <= status < 500:
        return InvalidRequestError(message, **where)
    if status >= 500:
        return TransientError(message, **where)
    return ApiError(f"unexpected response: {message}", **where)
