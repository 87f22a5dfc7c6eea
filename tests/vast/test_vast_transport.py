"""VastHttp on the shared request path: URL routing, keys, deadlines, progress lines."""

from __future__ import annotations

import time

import pytest

from launcher.errors import ApiError, AuthError, ConfigError, TransientError
from launcher.vast import VastHttp
from launcher.vultr import RetryPolicy, Timeouts
from launcher.vultr.jsonhttp import JsonHttp
from launcher.waiting import ProgressLines

from .conftest import FAKE_VAST_KEY


def test_v0_paths_hang_off_the_setting_and_v1_paths_off_its_root(stub, http):
    """vast-ai/vast-cli vastai/api/client.py _build_url: "/api/v0" is prefixed unless the
    path already names /api/vN/."""
    stub.add("GET", "/api/v0/users/current", stub.Reply(200, {"id": 1}))
    stub.add("GET", "/api/v1/instances/", stub.Reply(200, {"instances": []}))
    assert http.request("GET", "/users/current") == {"id": 1}
    assert http.request("GET", "/api/v1/instances/") == {"instances": []}
    assert [r.path for r in stub.received] == ["/api/v0/users/current", "/api/v1/instances/"]


def test_a_v1_path_under_a_base_without_a_version_is_a_config_error(stub, make_http):
    http = make_http(base_url=stub.origin + "/vast")
    with pytest.raises(ConfigError, match="must end in /api/v0"):
        http.request("GET", "/api/v1/instances/")


def test_no_key_is_a_config_error_naming_the_variable(make_http, stub):
    with pytest.raises(ConfigError, match="VAST_API_KEY is not set") as caught:
        make_http(key=None).request("GET", "/users/current")
    assert "manage-keys" in caught.value.hint
    assert stub.received == []


def test_a_refused_key_is_an_auth_error_and_not_retried(stub, http):
    stub.add("GET", "/api/v0/users/current",
             stub.error(401, "auth_error", "Invalid user key"))
    with pytest.raises(AuthError, match=r"GET /users/current \(HTTP 401\): Invalid user key"):
        http.request("GET", "/users/current")
    assert len(stub.received) == 1


def test_a_keyless_sibling_sends_no_key_and_takes_paths_as_they_are(stub, http):
    stub.add("GET", "/api/v1/x", stub.Reply(200, "text"))
    with http.with_base(stub.origin) as other:
        assert not other.has_key and other.timeouts == http.timeouts
        assert other.request_text("GET", "/api/v1/x", auth=False) == "text"
    assert "Authorization" not in stub.received[0].headers


def test_an_array_answer_is_an_error_for_request_and_fine_for_request_json(stub, http):
    stub.add("GET", "/api/v0/ssh/", stub.Reply(200, [1, 2]))
    assert http.request_json("GET", "/ssh/") == [1, 2]
    with pytest.raises(Exception, match="not a JSON object"):
        http.request("GET", "/ssh/")


def test_a_server_that_drips_its_answer_is_cut_at_the_attempt_deadline(stub, make_http):
    """The per-read timeout never trips on a byte every 0.2 s; the attempt's deadline does."""
    stub.add("GET", "/api/v0/users/current", stub.Reply(200, "x" * 200, drip_s=0.2))
    lines: list[str] = []
    http = make_http(timeouts=Timeouts(connect=1.0, read=1.0, attempt=1.5),
                     policy=RetryPolicy(max_attempts=1),
                     progress=ProgressLines(every_s=0.5, write=lines.append))
    started = time.monotonic()
    with pytest.raises(TransientError, match="no complete answer in time talking to 127.0.0.1"):
        http.request("GET", "/users/current")
    assert time.monotonic() - started < 5
    assert any("GET /users/current" in line for line in lines)


def test_a_server_that_never_answers_is_a_read_timeout_with_a_hint(stub, make_http):
    stub.add("GET", "/api/v0/users/current", stub.Reply(200, {}, delay=3))
    http = make_http(timeouts=Timeouts(connect=1.0, read=0.3, attempt=2.0),
                     policy=RetryPolicy(max_attempts=1))
    with pytest.raises(TransientError, match="read timeout") as caught:
        http.request("GET", "/users/current")
    assert "VAST_API_URL" in caught.value.hint


def test_the_base_class_needs_a_url_and_reads_no_error_bodies_itself():
    with pytest.raises(ValueError, match="base_url"):
        JsonHttp()
    with JsonHttp(base_url="http://127.0.0.1:9") as base, pytest.raises(NotImplementedError):
        base._status_error("GET", "/", None, 1, None)  # type: ignore[arg-type]


def test_the_repr_names_the_class_and_hides_the_key(http):
    assert repr(http).startswith("VastHttp(base_url='http://127.0.0.1:")
    assert FAKE_VAST_KEY not in repr(http) and isinstance(http, VastHttp)


def test_https_to_a_plain_http_server_names_vasts_variable(stub, make_http):
    http = make_http(base_url=stub.url.replace("http://", "https://"))
    with pytest.raises(ApiError, match="not retried") as caught:
        http.request("GET", "/users/current")
    assert "VAST_API_URL=http://127.0.0.1" in caught.value.hint
    assert "VULTR" not in str(caught.value)
