"""VastClient against a stub server on 127.0.0.1: what each method sends (compared with what
vast-cli sends), what it reads, and how errors come back."""

from __future__ import annotations

import pytest

from launcher.errors import (
    ApiError,
    ConfigError,
    NotFoundError,
    OutOfCapacityError,
    RateLimitedError,
    WaitFailedError,
    WaitTimeoutError,
)
from launcher.vast import InstanceSpec, OfferQuery

from .conftest import FAKE_VAST_KEY
from .test_vast_records import INSTANCE, OFFER

V0 = "/api/v0"
LIST = "/api/v1/instances/"


def row(id: int, label: str | None = "run-42", status: str | None = "running") -> dict:
    return {**INSTANCE, "id": id, "label": label, "actual_status": status}


def page(rows: list[dict], token: str | None = None) -> dict:
    return {"success": True, "instances_found": len(rows), "instances": rows,
            "next_token": token}


def test_search_sends_vast_clis_body_with_the_key_as_bearer(stub, client):
    """vast-ai/vast-cli vastai/api/offers.py search_offers: POST /api/v0/bundles/ with the
    query dict; vastai/api/client.py _build_headers: "Authorization: Bearer <key>"."""
    stub.add("POST", f"{V0}/bundles/", stub.Reply(200, {"offers": [OFFER, {**OFFER, "id": 2}]}))
    offers = client.search_offers(OfferQuery(filters={"num_gpus": 4}, limit=2))
    assert [o.id for o in offers] == [12345678, 2]
    (sent,) = stub.calls("POST", f"{V0}/bundles/")
    assert sent.headers["Authorization"] == f"Bearer {FAKE_VAST_KEY}"
    assert sent.json() == OfferQuery(filters={"num_gpus": 4}, limit=2).body()
    assert sent.json()["num_gpus"] == {"eq": 4}


def test_a_search_is_a_read_and_is_retried_after_a_rate_limit_and_a_5xx(stub, client, fake_time):
    stub.add("POST", f"{V0}/bundles/",
             stub.Reply(429, {"detail": "API requests too frequent endpoint threshold=4.5"}),
             stub.Reply(502, "<html>bad gateway</html>"), stub.Reply(200, {"offers": []}))
    assert client.search_offers(OfferQuery()) == ()
    assert len(stub.calls("POST", f"{V0}/bundles/")) == 3
    assert fake_time.sleeps == [0.5, 1.0]


def test_a_rate_limit_that_outlasts_the_retries_is_a_rate_limited_error(stub, client):
    stub.add("POST", f"{V0}/bundles/", stub.Reply(429, "API requests too frequent"))
    with pytest.raises(RateLimitedError, match="too frequent .after 4 attempts"):
        client.search_offers(OfferQuery())


def test_a_search_answer_without_offers_is_an_error(stub, client):
    stub.add("POST", f"{V0}/bundles/", stub.Reply(200, {"results": []}))
    with pytest.raises(ApiError, match="no 'offers' list"):
        client.search_offers(OfferQuery())


SPEC = InstanceSpec(image="pytorch/pytorch:2.4.0", label="run-42", disk_gb=20,
                    env={"RUN_ID": "42"}, onstart="echo hi")


def test_create_puts_the_spec_on_the_offer(stub, client):
    """vast-ai/vast-cli vastai/api/instances.py create_instance: PUT /asks/{id}/."""
    stub.add("PUT", f"{V0}/asks/777/", stub.Reply(200, {
        "success": True, "new_contract": 4242, "instance_api_key": FAKE_VAST_KEY}))
    made = client.create_instance(777, SPEC)
    assert made.id == 4242 and made.instance_api_key.reveal() == FAKE_VAST_KEY
    (sent,) = stub.calls("PUT", f"{V0}/asks/777/")
    assert sent.json() == SPEC.body()
    assert not stub.calls("GET", LIST)


@pytest.mark.parametrize("status", [404, 410])
def test_an_offer_that_is_gone_is_out_of_capacity_and_not_retried(stub, client, status):
    """create_instance.yaml 404/410 no_such_ask: a failover moves on to the next offer."""
    stub.add("PUT", f"{V0}/asks/777/", stub.error(
        status, "no_such_ask", f"error {status}/3907: no_such_ask Instance type 777 is no "
        "longer available."))
    with pytest.raises(OutOfCapacityError, match="no_such_ask"):
        client.create_instance(777, SPEC)
    assert len(stub.calls("PUT", f"{V0}/asks/777/")) == 1


def test_an_ambiguous_create_whose_instance_exists_returns_it_without_a_second_put(stub, client):
    stub.add("PUT", f"{V0}/asks/777/", stub.Reply(500, {"success": False, "msg": "oops"}))
    stub.add("GET", LIST, stub.Reply(200, page([row(4242)])))
    made = client.create_instance(777, SPEC)
    assert (made.id, made.found_by_label, made.instance_api_key) == (4242, True, None)
    assert len(stub.calls("PUT", f"{V0}/asks/777/")) == 1
    (looked,) = stub.calls("GET", LIST)
    assert looked.arg("select_filters") == {"label": {"eq": "run-42"}}


def test_an_ambiguous_create_after_a_dropped_connection_is_looked_up_too(stub, client):
    stub.add("PUT", f"{V0}/asks/777/", stub.Reply(drop=True))
    stub.add("GET", LIST, stub.Reply(200, page([row(9, label="other"), row(4242)])))
    assert client.create_instance(777, SPEC).id == 4242
    assert len(stub.calls("PUT", f"{V0}/asks/777/")) == 1


def test_an_ambiguous_create_with_no_instance_is_sent_again(stub, client):
    """As launcher/vultr/mutations.create_resolved: nothing found, the create is repeated
    within the same retry budget."""
    stub.add("PUT", f"{V0}/asks/777/", stub.Reply(503, "unavailable"),
             stub.Reply(200, {"success": True, "new_contract": 4242}))
    stub.add("GET", LIST, stub.Reply(200, page([])))
    assert client.create_instance(777, SPEC).id == 4242
    assert len(stub.calls("PUT", f"{V0}/asks/777/")) == 2


def test_an_ambiguous_create_that_never_shows_up_says_none_exists(stub, client):
    stub.add("PUT", f"{V0}/asks/777/", stub.Reply(500, "oops"))
    stub.add("GET", LIST, stub.Reply(200, page([])))
    with pytest.raises(ApiError, match="gave up after 4 attempts, and no instance labelled "
                                       "'run-42' exists"):
        client.create_instance(777, SPEC)
    assert len(stub.calls("PUT", f"{V0}/asks/777/")) == 4


def test_an_ambiguous_create_whose_lookup_fails_says_what_to_check(stub, client):
    stub.add("PUT", f"{V0}/asks/777/", stub.Reply(500, "oops"))
    stub.add("GET", LIST, stub.error(401, "auth_error", "Invalid user key"))
    with pytest.raises(ApiError, match="may have succeeded") as caught:
        client.create_instance(777, SPEC)
    assert "Vast.ai resources" in caught.value.hint
    assert len(stub.calls("PUT", f"{V0}/asks/777/")) == 1


def test_two_instances_with_the_run_label_are_an_error_not_a_guess(stub, client):
    stub.add("PUT", f"{V0}/asks/777/", stub.Reply(500, "oops"))
    stub.add("GET", LIST, stub.Reply(200, page([row(1), row(2)])))
    with pytest.raises(ApiError, match="2 instances match"):
        client.create_instance(777, SPEC)


def test_a_create_answered_success_false_is_an_error(stub, client):
    stub.add("PUT", f"{V0}/asks/777/", stub.Reply(200, {"success": False, "msg": "no credit"}))
    with pytest.raises(ApiError, match="success: false .no credit"):
        client.create_instance(777, SPEC)


def test_the_list_reads_three_pages_following_next_token(stub, client, fake_time):
    """vast-ai/vast-cli vastai/api/instances.py show_instances: GET /api/v1/instances/ with
    select_filters, order_by and limit 25 as JSON query values, after_token = next_token."""
    stub.add("GET", LIST, stub.Reply(200, page([row(1), row(2)], "t1")),
             stub.Reply(200, page([row(3)], "t2")), stub.Reply(200, page([row(4)], None)))
    found = client.list_instances()
    assert [i.id for i in found] == [1, 2, 3, 4]
    sent = stub.calls("GET", LIST)
    assert [s.query.get("after_token") for s in sent] == [None, ["t1"], ["t2"]]
    assert all(s.arg("limit") == 25 for s in sent)
    assert sent[0].arg("order_by") == [{"col": "id", "dir": "asc"}]
    assert fake_time.sleeps == [1.0, 1.0]  # show_instances.yaml: one request a second
    assert not stub.calls("GET", f"{V0}{LIST}")


def test_the_list_by_label_filters_on_the_server_and_again_here(stub, client):
    stub.add("GET", LIST, stub.Reply(200, page([row(1), row(2, label="run-420")])))
    assert [i.id for i in client.list_instances("run-42")] == [1]
    (sent,) = stub.calls("GET", LIST)
    assert sent.arg("select_filters") == {"label": {"eq": "run-42"}}


def test_a_repeated_page_token_stops_the_paging(stub, client):
    stub.add("GET", LIST, stub.Reply(200, page([row(1)], "same")))
    with pytest.raises(ApiError, match="repeated a page token"):
        client.list_instances()


def test_paging_is_bounded(stub, http):
    counter = iter(range(1000))
    stub.add("GET", LIST, lambda _: stub.Reply(200, page([row(1)], f"t{next(counter)}")))
    with pytest.raises(ApiError, match="more than 3 pages"):
        list(http.pages(LIST, "instances", {}, max_pages=3))


def test_a_page_without_its_list_is_an_error(stub, client):
    stub.add("GET", LIST, stub.Reply(200, {"success": True}))
    with pytest.raises(ApiError, match="no 'instances' list"):
        client.list_instances()


def test_get_instance_reads_the_instances_object(stub, client):
    """vastai/api/instances.py show_instance: GET /instances/{id}/?owner=me."""
    stub.add("GET", f"{V0}/instances/883/", stub.Reply(200, {"instances": INSTANCE}))
    assert client.get_instance(883).ssh_port == 10882
    (sent,) = stub.calls("GET", f"{V0}/instances/883/")
    assert sent.query == {"owner": ["me"]}


def test_an_instance_answered_as_null_or_404_is_not_found(stub, client):
    stub.add("GET", f"{V0}/instances/1/", stub.Reply(200, {"instances": None}))
    stub.add("GET", f"{V0}/instances/2/", stub.error(404, "not_found", "Instance not found"))
    for missing in (1, 2):
        with pytest.raises(NotFoundError):
            client.get_instance(missing)


def test_destroy_is_true_when_it_existed_and_false_when_already_gone(stub, client):
    """vastai/api/instances.py destroy_instance: DELETE /instances/{id}/;
    destroy_instance.yaml: 404 not_found when it is gone."""
    stub.add("DELETE", f"{V0}/instances/5/", stub.Reply(200, {"success": True}))
    stub.add("DELETE", f"{V0}/instances/6/", stub.error(404, "not_found", "Instance not found"))
    assert client.destroy_instance(5) is True
    assert client.destroy_instance(6) is False


def test_a_destroy_whose_answer_was_lost_is_sent_again_and_a_404_then_means_done(stub, client):
    stub.add("DELETE", f"{V0}/instances/5/", stub.Reply(502, "bad gateway"),
             stub.error(404, "not_found", "Instance not found"))
    assert client.destroy_instance(5) is True
    assert len(stub.calls("DELETE", f"{V0}/instances/5/")) == 2


def test_the_wait_polls_until_running(stub, client, fake_time):
    stub.add("GET", f"{V0}/instances/7/", stub.Reply(200, {"instances": row(7, status=None)}),
             stub.Reply(200, {"instances": row(7, status="loading")}),
             stub.Reply(200, {"instances": row(7)}))
    assert client.wait_instance_running(7, deadline_s=60).is_running
    assert fake_time.sleeps == [2.0, 4.0]


def test_an_exited_instance_fails_the_wait(stub, client):
    stub.add("GET", f"{V0}/instances/7/", stub.Reply(200, {"instances": row(7, status="exited")}))
    with pytest.raises(WaitFailedError, match="the instance is exited"):
        client.wait_instance_running(7)


def test_the_wait_ends_at_its_deadline(stub, client):
    stub.add("GET", f"{V0}/instances/7/", stub.Reply(200, {"instances": row(7, status="loading")}))
    with pytest.raises(WaitTimeoutError, match="not ready after 10s; last state: loading"):
        client.wait_instance_running(7, deadline_s=10)


def test_logs_are_requested_then_fetched_from_the_result_url_without_the_key(
        stub, other_host, client):
    """vastai/api/instances.py logs: PUT /instances/request_logs/{id}/ {"tail": ...}, then
    _poll_result_url GETs the result_url (no auth header) until it answers 200."""
    url = f"{other_host.origin}/logs/abc.log?X-Amz-Signature=s%2Fg&X-Amz-Expires=60"
    stub.add("PUT", f"{V0}/instances/request_logs/9/",
             stub.Reply(200, {"success": True, "result_url": url}))
    other_host.add("GET", "/logs/abc.log", stub.Reply(404, "<Error>NoSuchKey</Error>"),
                   stub.Reply(403, "AccessDenied"), stub.Reply(200, "line 1\nline 2\n"))
    assert client.request_logs(9, tail=100) == "line 1\nline 2\n"
    (asked,) = stub.calls("PUT", f"{V0}/instances/request_logs/9/")
    assert asked.json() == {"tail": "100"}  # logs.yaml: tail is a string
    fetched = other_host.calls("GET", "/logs/abc.log")
    assert len(fetched) == 3
    assert all("Authorization" not in f.headers for f in fetched)
    assert fetched[0].query == {"X-Amz-Signature": ["s/g"], "X-Amz-Expires": ["60"]}


def test_logs_that_never_appear_end_at_the_deadline(stub, other_host, client):
    stub.add("PUT", f"{V0}/instances/request_logs/9/",
             stub.Reply(200, {"success": True, "result_url": f"{other_host.origin}/l.log"}))
    other_host.add("GET", "/l.log", stub.Reply(404, "missing"))
    with pytest.raises(WaitTimeoutError, match="logs of instance 9"):
        client.request_logs(9, deadline_s=5)


def test_a_result_url_in_clear_to_another_machine_is_refused(stub, client):
    stub.add("PUT", f"{V0}/instances/request_logs/9/",
             stub.Reply(200, {"success": True, "result_url": "http://logs.example.com/a"}))
    with pytest.raises(ConfigError, match="plain http"):
        client.request_logs(9)


def test_show_user(stub, client):
    """vastai/api/billing.py show_user: GET /users/current."""
    stub.add("GET", f"{V0}/users/current", stub.Reply(200, {
        "id": 7, "email": "a@example.com", "balance": 5.0, "credit": 12.5,
        "api_key": FAKE_VAST_KEY}))
    user = client.show_user()
    assert (user.id, user.credit) == (7, 12.5)


@pytest.mark.parametrize("answer", [
    [{"id": 1, "key": "ssh-ed25519 AAAA a@b"}],  # show_ssh_keys.yaml: an array
    {"ssh_keys": [{"id": 1, "ssh_key": "ssh-ed25519 AAAA a@b"}]},  # vast-cli's test stub
])
def test_ssh_keys_are_listed_from_either_shape(stub, client, answer):
    stub.add("GET", f"{V0}/ssh/", stub.Reply(200, answer))
    (key,) = client.list_ssh_keys()
    assert (key.id, key.public_key) == (1, "ssh-ed25519 AAAA a@b")


def test_creating_an_ssh_key_posts_it(stub, client):
    """vastai/api/keys.py create_ssh_key: POST /ssh/ {"ssh_key": ...}; create_ssh_key.yaml:
    the answer's "key" object."""
    stub.add("POST", f"{V0}/ssh/", stub.Reply(200, {"success": True, "key": {
        "id": 3, "public_key": "ssh-ed25519 AAAA me@host"}}))
    key = client.create_ssh_key(" ssh-ed25519 AAAA me@host\n")
    assert (key.id, key.public_key) == (3, "ssh-ed25519 AAAA me@host")
    (sent,) = stub.calls("POST", f"{V0}/ssh/")
    assert sent.json() == {"ssh_key": "ssh-ed25519 AAAA me@host"}


def test_an_ambiguous_ssh_key_create_finds_the_key_by_its_body(stub, client):
    stub.add("POST", f"{V0}/ssh/", stub.Reply(500, "oops"))
    stub.add("GET", f"{V0}/ssh/", stub.Reply(200, [{"id": 8, "key": "ssh-ed25519 AAAA other"}]))
    assert client.create_ssh_key("ssh-ed25519 AAAA me@host").id == 8
    assert len(stub.calls("POST", f"{V0}/ssh/")) == 1


def test_a_malformed_public_key_is_refused_before_sending(stub, client):
    with pytest.raises(ConfigError, match="public key"):
        client.create_ssh_key("not-a-key")
    assert stub.received == []


def test_a_log_request_answered_without_a_url_is_an_error(stub, client):
    stub.add("PUT", f"{V0}/instances/request_logs/9/", stub.Reply(200, {"success": True}))
    with pytest.raises(ApiError, match="no result_url"):
        client.request_logs(9)


@pytest.mark.parametrize("answer", [{"keys": []}, "", {"ssh_keys": "none"}])
def test_an_ssh_key_list_of_another_shape_is_an_error(stub, client, answer):
    stub.add("GET", f"{V0}/ssh/", stub.Reply(200, answer))
    with pytest.raises(ApiError, match="no list of SSH keys"):
        client.list_ssh_keys()


def test_an_empty_id_names_no_resource(client):
    with pytest.raises(ValueError, match="empty id"):
        client.get_instance("")  # type: ignore[arg-type]
