"""Vast's error bodies, as its reference documents them, mapped onto launcher.errors."""

from __future__ import annotations

import json

import pytest

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
from launcher.vast.envelope import error_for_status, error_parts, server_message

from .conftest import FAKE_VAST_KEY


def body(**fields) -> bytes:
    return json.dumps(fields).encode()


# Each body is the example of vast-ai/docs api-reference/openapi/yaml/<file> for that status.
CASES = [
    # create_instance.yaml 404: the code is invalid_args, no_such_ask is in the text
    (404, body(success=False, error="invalid_args", ask_id=1234567,
               msg="error 404/3603: no_such_ask Instance type by id 1234567 is not available."),
     OutOfCapacityError),
    # create_instance.yaml 410 (cancel_unavail)
    (410, body(success=False, error="no_such_ask", ask_id=1234567,
               msg="error 410/3907: no_such_ask Instance type 1234567 is no longer available."),
     OutOfCapacityError),
    # create_instance.yaml 403: not an auth failure, a refused request
    (403, body(success=False, error="invalid_args", ask_id=1,
               msg="error 403/3586: Offer 1234567 is not your own. Hosts can only rent their "
                   "own machines."), InvalidRequestError),
    # show_instance.yaml 401
    (401, body(success=False, error="auth_error", msg="Invalid user key"), AuthError),
    # logs.yaml 403 (no success key)
    (403, body(error="not_authorized", msg="Not authorized to view logs for this instance"),
     AuthError),
    # search_offers.yaml documents a bad key as a 404
    (404, body(error="auth_error", msg="Invalid user key"), AuthError),
    # destroy_instance.yaml 404
    (404, body(success=False, error="not_found", msg="Instance not found"), NotFoundError),
    # logs.yaml 404
    (404, body(error="invalid_id", msg="Invalid instance id."), NotFoundError),
    # create_instance.yaml / show_instance.yaml 429
    (429, body(detail="API requests too frequent endpoint threshold=4.5"), RateLimitedError),
    # rate-limits-and-errors.mdx: "often plain text"
    (429, b"API requests too frequent: endpoint threshold=1.0", RateLimitedError),
    # create_instance.yaml 400
    (400, body(success=False, error="invalid_args",
               msg="error 400/3467: Invalid args: 'id' is required"), InvalidRequestError),
    (409, body(success=False, error="conflict", msg="busy"), ConflictError),
    (502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", TransientError),
    (302, b"", ApiError),
]


@pytest.mark.parametrize("status, raw, kind", CASES)
def test_each_documented_error_maps_to_what_the_caller_should_do(status, raw, kind):
    error = error_for_status("PUT", "/asks/1/", status, raw, server_message(raw, status))
    assert type(error) is kind
    assert error.status == status and error.path == "/asks/1/"


def test_the_message_is_the_text_with_the_code_when_the_text_lacks_it():
    raw = body(success=False, error="auth_error", msg="Invalid user key")
    assert server_message(raw, 401) == "Invalid user key (auth_error)"
    raw = body(success=False, error="no_such_ask", msg="error 410/3907: no_such_ask gone")
    assert server_message(raw, 410) == "error 410/3907: no_such_ask gone"


@pytest.mark.parametrize("raw, parts", [
    (body(detail="API requests too frequent"), ("", "API requests too frequent")),
    (body(message="only message"), ("", "only message")),
    (body(error="code_only"), ("code_only", "code_only")),
    (b"<p>Bad <b>gateway</b></p>", ("", " Bad  gateway  ")),
    (b"[1, 2]", ("", "[1, 2]")),
])
def test_error_parts_read_every_documented_shape(raw, parts):
    assert error_parts(raw) == parts


def test_an_empty_body_says_the_status_phrase_and_a_long_one_is_cut():
    assert server_message(b"", 503) == "Service Unavailable"
    assert server_message(b"", 599) == "no error message"
    assert server_message(b"x" * 1000, 500).endswith("...")


def test_an_echoed_key_is_scrubbed():
    raw = body(success=False, error="auth_error", msg=f"bad key {FAKE_VAST_KEY}")
    message = server_message(raw, 401, FAKE_VAST_KEY)
    assert FAKE_VAST_KEY not in message and "***" in message


def test_an_auth_error_carries_the_hint_naming_the_variable():
    raw = body(success=False, error="auth_error", msg="Invalid user key")
    error = error_for_status("GET", "/users/current", 401, raw, server_message(raw, 401))
    assert "VAST_API_KEY" in error.hint and "manage-keys" in error.hint
