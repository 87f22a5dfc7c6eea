"""The error envelope -> exception mapping, as a table."""

from __future__ import annotations

import pytest
from support.keys import FAKE_VULTR_KEY

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
from launcher.vultr.envelope import error_for_status, server_message


@pytest.mark.parametrize(
    ("status", "message", "cls"),
    [
        (401, "Invalid API token.", AuthError),
        (403, "Unauthorized IP address: 1.2.3.4", AuthError),
        (404, "Not found", NotFoundError),
        (429, "Rate limit reached", RateLimitedError),
        (400, "Invalid plan", InvalidRequestError),
        (422, "Unprocessable", InvalidRequestError),
        (405, "Method not allowed", InvalidRequestError),
        (400, "Plan is not available in the selected region", OutOfCapacityError),
        (400, "The plan is not available right now", OutOfCapacityError),
        (400, "GPU out of stock", OutOfCapacityError),
        (400, "Sold Out", OutOfCapacityError),
        (400, "Insufficient capacity for this plan", OutOfCapacityError),
        (400, "No available servers in this location", OutOfCapacityError),
        (400, "Server is currently locked", ConflictError),
        (400, "Instance is locked", ConflictError),
        (400, "invalid instance ID", NotFoundError),
        (400, "Server is pending destruction", NotFoundError),
        (400, "Server is locked for maintenance", ConflictError),
        (409, "Conflict", ConflictError),
        (500, "Internal error", TransientError),
        (501, "Not implemented", TransientError),
        (503, "sold out", TransientError),  # capacity phrases only count on a 4xx
        (302, "Found", ApiError),
    ],
)
def test_status_and_text_to_exception(status, message, cls):
    err = error_for_status("POST", "/instances", status, message)
    assert type(err) is cls
    assert str(err).startswith(f"POST /instances (HTTP {status}): ")
    assert (err.method, err.path, err.status) == ("POST", "/instances", status)


def test_rate_limited_carries_retry_after():
    assert error_for_status("GET", "/x", 429, "slow", retry_after=3.0).retry_after == 3.0


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b'{"error": "Invalid plan", "status": 400}', 400, "Invalid plan"),
        (b'{"error": {"message": "nested"}}', 400, "nested"),
        (b'{"error": ""}', 404, "Not Found"),
        (b"", 502, "Bad Gateway"),
        (b"", 599, "no error message"),
        (
            b"<html><body><h1>503  Service\nUnavailable</h1></body></html>",
            503,
            "503 Service Unavailable",
        ),
        (b'["not", "an", "envelope"]', 400, '["not", "an", "envelope"]'),
        (b"\xff\xfe broken", 500, "\ufffd\ufffd broken"),
    ],
)
def test_server_message(body, status, message):
    assert server_message(body, status) == message


def test_server_message_is_truncated_and_redacted():
    key = FAKE_VULTR_KEY
    text = server_message(f'{{"error": "bad token {key} {"x" * 500}"}}'.encode(), 401, key)
    assert key not in text and "***" in text
    assert len(text) <= 303 and text.endswith("...")
