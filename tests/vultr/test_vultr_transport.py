"""VultrHttp against a stub server on 127.0.0.1: headers, timeouts, errors, retries, pages."""

from __future__ import annotations

import logging

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from launcher import __version__
from launcher.errors import (
    ApiError,
    AuthError,
    ConfigError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    OutOfCapacityError,
    RateLimitedError,
    TransientError,
)
from launcher.vultr import AUTH_HINT, FailureKind, RetryPolicy, Timeouts, UnconfirmedWriteError
from launcher.vultr.failures import classify as _classify


def test_sends_auth_user_agent_and_json(stub, http, fake_key):
    stub.add("POST", "/things", stub.Reply(201, {"thing": {"id": "t1"}}))
    data = http.request("POST", "/things", json={"a": 1}, expect=(201,))
    assert data == {"thing": {"id": "t1"}}
    (req,) = stub.received
    assert req.headers["Authorization"] == f"Bearer {fake_key}"
    assert req.headers["User-Agent"] == f"launcher/{__version__}"
    assert req.json() == {"a": 1}


def test_public_call_sends_no_key_and_works_without_one(stub, make_http):
    stub.add("GET", "/regions", stub.Reply(200, {"regions": []}))
    http = make_http(key=None)
    assert http.request("GET", "/regions", auth=False) == {"regions": []}
    assert "Authorization" not in stub.received[0].headers


def test_call_needing_a_key_without_one_is_a_config_error_naming_the_variable(stub, make_http):
    with pytest.raises(ConfigError, match="VULTR_KEY"):
        make_http(key=None).request("GET", "/account")
    assert stub.received == []


def test_every_call_passes_the_timeout_tuple(http):
    seen = []

    class Recorder(requests.Session):
        def request(self, *args, **kwargs):
            seen.append(kwargs["timeout"])
            return super().request(*args, **kwargs)

    http._session = Recorder()
    with pytest.raises(NotFoundError):
        http.request("GET", "/nothing")
    assert seen == [(1.0, 2.0)]


def test_slow_server_trips_the_read_timeout_and_is_retried(stub, make_http, fake_time):
    stub.add("GET", "/slow", stub.Reply(200, {"late": True}, delay=0.6), stub.Reply(200, {"ok": 1}))
    http = make_http(timeouts=Timeouts(connect=1.0, read=0.2))
    assert http.request("GET", "/slow") == {"ok": 1}
    assert len(stub.calls("GET", "/slow")) == 2
    assert fake_time.sleeps == [0.5]


def test_empty_body_is_none(stub, http):
    stub.add("DELETE", "/things/1", stub.Reply(204))
    assert http.request("DELETE", "/things/1", expect=(204,)) is None


def test_unexpected_2xx_is_still_success_and_logged(stub, http, caplog):
    stub.add("POST", "/things", stub.Reply(201, {"thing": {}}))
    with caplog.at_level(logging.WARNING, logger="launcher.vultr"):
        assert http.request("POST", "/things", expect=(202,)) == {"thing": {}}
    assert "answered HTTP 201, expected 202" in caplog.text


@pytest.mark.parametrize("body", ["<html>oops</html>", "[1, 2]"])
def test_success_that_is_not_a_json_object_is_an_error(stub, http, body):
    stub.add("GET", "/odd", stub.Reply(200, body))
    with pytest.raises(ApiError, match="not a JSON object"):
        http.request("GET", "/odd")


@pytest.mark.parametrize(
    ("status", "message", "cls"),
    [
        (400, "Invalid plan", InvalidRequestError),
        (422, "label too long", InvalidRequestError),
        (404, "Invalid instance-id.", NotFoundError),
        (401, "Invalid API token.", AuthError),
        (403, "Unauthorized IP address", AuthError),
        (400, "Plan is not available in the selected region", OutOfCapacityError),
        (400, "This plan is currently SOLD OUT", OutOfCapacityError),
        (400, "Unable to attach: Server is currently locked", ConflictError),
        (409, "busy", ConflictError),
        (501, "Not Implemented", TransientError),
    ],
)
def test_error_envelope_maps_to_exceptions_without_retry(stub, http, status, message, cls):
    stub.add("GET", "/x", stub.error(status, message))
    with pytest.raises(cls) as info:
        http.request("GET", "/x", params={"q": "secret-query"})
    err = info.value
    assert type(err) is cls
    assert str(err).startswith(f"GET /x (HTTP {status}): {message}")
    assert "secret-query" not in str(err) and "127.0.0.1" not in str(err)
    assert len(stub.received) == 1


def test_auth_error_hints_at_the_ip_allowlist_and_expiry(stub, http):
    stub.add("GET", "/account", stub.error(401, "Invalid API token."))
    with pytest.raises(AuthError) as info:
        http.request("GET", "/account")
    assert info.value.hint == AUTH_HINT
    assert "Access Control" in str(info.value) and "expire" in str(info.value)


def test_non_json_error_body_still_maps(stub, http):
    stub.add("GET", "/x", stub.Reply(502, "<html><h1>Bad   Gateway</h1></html>"))
    with pytest.raises(TransientError, match=r"\(HTTP 502\): Bad Gateway \(after 4 attempts\)"):
        http.request("GET", "/x")


def test_server_errors_are_retried_then_succeed(stub, http, fake_time):
    stub.add("GET", "/x", stub.error(500, "boom"), stub.error(503, "busy"), stub.Reply(200, {}))
    assert http.request("GET", "/x") == {}
    assert len(stub.received) == 3
    assert fake_time.sleeps == [0.5, 1.0]


def test_rate_limit_honours_retry_after_then_gives_up(stub, http, fake_time):
    stub.add("GET", "/x", stub.error(429, "slow down", **{"Retry-After": "7"}))
    with pytest.raises(RateLimitedError) as info:
        http.request("GET", "/x")
    assert info.value.retry_after == 7.0
    assert fake_time.sleeps == [7.0, 7.0, 7.0]
    assert len(stub.received) == 4


def test_overall_deadline_stops_retries(stub, make_http, fake_time):
    policy = RetryPolicy(max_attempts=10, base_delay=4.0, jitter="none", deadline_s=10.0)
    stub.add("GET", "/x", stub.error(500, "boom"))
    with pytest.raises(TransientError):
        make_http(policy=policy).request("GET", "/x")
    assert fake_time.sleeps == [4.0]  # the next wait (8 s) would pass the 10 s deadline


def test_connection_refused_is_retried_then_transient(make_http, closed_port_url, fake_time):
    http = make_http(base_url=closed_port_url)
    port = closed_port_url.split(":")[2].split("/")[0]
    with pytest.raises(TransientError, match=f"connect error talking to 127.0.0.1:{port} "
                       "after 4 attempts") as info:
        http.request("GET", "/x")
    assert str(info.value).startswith("GET /x")
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert len(fake_time.sleeps) == 3


def test_dropped_connection_is_retried_for_reads(stub, http):
    stub.add("GET", "/x", stub.Reply(drop=True), stub.Reply(200, {"ok": True}))
    assert http.request("GET", "/x") == {"ok": True}


@pytest.mark.parametrize(
    "reply",
    [
        {"status": 500, "body": {"error": "boom", "status": 500}},
        {"drop": True},
    ],
)
def test_mutation_is_not_repeated_after_an_ambiguous_failure(stub, http, reply):
    stub.add("POST", "/things", stub.Reply(**reply))
    with pytest.raises(UnconfirmedWriteError) as info:
        http.request("POST", "/things", json={}, idempotent=False)
    assert len(stub.received) == 1
    assert isinstance(info.value, TransientError)


def test_a_post_is_a_mutation_unless_told_otherwise(stub, http):
    stub.add("POST", "/things", stub.Reply(drop=True), stub.Reply(202, {"thing": {}}))
    with pytest.raises(UnconfirmedWriteError):
        http.request("POST", "/things", json={})
    assert len(stub.received) == 1
    stub.add("POST", "/things", stub.Reply(drop=True), stub.Reply(202, {"thing": {}}))
    assert http.request("POST", "/things", json={}, idempotent=True) == {"thing": {}}


def test_mutation_is_retried_after_429_and_connect_errors(stub, http):
    stub.add("POST", "/things", stub.error(429, "slow"), stub.Reply(202, {"thing": {}}))
    assert http.request("POST", "/things", json={}, idempotent=False) == {"thing": {}}
    assert len(stub.received) == 2


def test_path_must_be_relative_and_without_query(http):
    for bad in ("instances", "/instances?label=x"):
        with pytest.raises(ValueError):
            http.request("GET", bad)


def test_broken_requests_are_not_retried(http):
    class Broken(requests.Session):
        def request(self, *args, **kwargs):
            raise requests.exceptions.SSLError("certificate verify failed for https://x/")

    http._session = Broken()
    with pytest.raises(ApiError, match="certificate is not trusted") as info:
        http.request("GET", "/x")
    assert "https://x" not in str(info.value) and info.value.__context__ is None


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (requests.exceptions.ConnectTimeout(), FailureKind.CONNECT),
        (requests.exceptions.ReadTimeout(), FailureKind.READ_TIMEOUT),
        (
            requests.exceptions.ConnectionError(
                MaxRetryError(None, "/", NewConnectionError(None, "refused"))
            ),
            FailureKind.CONNECT,
        ),
        (requests.exceptions.ConnectionError(ProtocolError("aborted")), FailureKind.DROPPED),
        (requests.exceptions.ConnectionError(), FailureKind.DROPPED),
        (requests.exceptions.ChunkedEncodingError(), FailureKind.DROPPED),
        (requests.exceptions.SSLError(), None),
        (requests.exceptions.InvalidURL(), None),
    ],
)
def test_classify_requests_failures(exc, kind):
    assert _classify(exc) is kind


# -- pagination --------------------------------------------------------------------------------


def _pages(items: list[dict], per_page_seen: list[int]):
    def reply(req):
        per_page = int(req.query["per_page"][0])
        per_page_seen.append(per_page)
        start = int(req.query.get("cursor", ["0"])[0])
        chunk = items[start : start + per_page]
        nxt = str(start + per_page) if start + per_page < len(items) else ""
        return {"items": chunk, "meta": {"total": len(items), "links": {"next": nxt, "prev": ""}}}

    return reply


def test_paginates_over_many_pages(stub, http):
    items = [{"id": i} for i in range(250)]
    per_page_seen: list[int] = []
    pages = _pages(items, per_page_seen)
    stub.add("GET", "/items", lambda req: stub.Reply(200, pages(req)))
    got = list(http.paginate("/items", "items", {"type": "vcg"}))
    assert got == items
    assert per_page_seen == [100, 100, 100]
    assert all(r.query["type"] == ["vcg"] for r in stub.received)
    assert "cursor" not in stub.received[0].query


def test_per_page_is_passed_and_bounded(stub, http):
    items = [{"id": i} for i in range(7)]
    seen: list[int] = []
    pages = _pages(items, seen)
    stub.add("GET", "/items", lambda req: stub.Reply(200, pages(req)))
    assert len(list(http.paginate("/items", "items", per_page=3))) == 7
    assert seen == [3, 3, 3]
    for bad in (0, 501):
        with pytest.raises(ValueError):
            list(http.paginate("/items", "items", per_page=bad))


@pytest.mark.parametrize(
    "extra",
    [{}, {"meta": None}, {"meta": []}, {"meta": {"links": "x"}}, {"meta": {"links": {}}}],
)
def test_missing_or_malformed_meta_ends_paging(stub, http, extra):
    stub.add("GET", "/items", stub.Reply(200, {"items": [{"id": 1}], **extra}))
    assert list(http.paginate("/items", "items")) == [{"id": 1}]


def test_repeated_cursor_raises_instead_of_looping(stub, http):
    page = {"items": [{"id": 1}], "meta": {"links": {"next": "same"}}}
    stub.add("GET", "/items", stub.Reply(200, page))
    with pytest.raises(ApiError, match="repeated a page cursor"):
        list(http.paginate("/items", "items"))
    assert len(stub.received) == 2


def test_page_count_is_bounded(stub, http):
    counter = iter(range(100))
    stub.add(
        "GET",
        "/items",
        lambda req: stub.Reply(
            200, {"items": [], "meta": {"links": {"next": f"c{next(counter)}"}}}
        ),
    )
    with pytest.raises(ApiError, match="more than 3 pages"):
        list(http.paginate("/items", "items", max_pages=3))


def test_page_without_the_list_is_an_error_not_an_empty_list(stub, http):
    stub.add("GET", "/plans-metal", stub.Reply(200, {"plans": []}))
    with pytest.raises(ApiError, match="'plans_metal'"):
        list(http.paginate("/plans-metal", "plans_metal"))


def test_context_manager_closes_the_session(make_http):
    with make_http() as http:
        assert repr(http).endswith("key=set)")
    assert repr(make_http(key=None)).endswith("key=missing)")
    with pytest.raises(TypeError):
        type(http)("plain-string-key")
