"""Creates, deletes, attaches and detaches after ambiguous failures: never a duplicate."""

from __future__ import annotations

import pytest

from launcher.errors import (
    AmbiguousCreateError,
    ConfigError,
    ConflictError,
    InvalidRequestError,
    TransientError,
)
from launcher.vultr import BlockSpec, InstanceSpec, Timeouts, VultrClient

SPEC = InstanceSpec(
    region="ewr",
    plan="vcg-a100-1",
    label="run-42",
    snapshot_id="snap-1",
    tags=("launcher", "run-42"),
)
INSTANCE = {
    "id": "i-1",
    "label": "run-42",
    "region": "ewr",
    "plan": "vcg-a100-1",
    "tags": ["launcher", "run-42"],
    "status": "pending",
}


def listing(key: str, *items: dict) -> dict:
    return {key: list(items), "meta": {"total": len(items), "links": {"next": "", "prev": ""}}}


def test_create_after_500_finds_the_instance_and_posts_once(stub, client):
    stub.add("POST", "/instances", stub.error(500, "internal error"))
    stub.add("GET", "/instances", stub.Reply(200, listing("instances", INSTANCE)))
    created = client.create_instance(SPEC)
    assert created.id == "i-1"
    assert len(stub.calls("POST", "/instances")) == 1
    assert stub.calls("GET", "/instances")[0].query["label"] == ["run-42"]


def test_create_after_read_timeout_with_nothing_found_posts_again(stub, make_http):
    client = VultrClient(make_http(timeouts=Timeouts(connect=1.0, read=0.2)))
    stub.add(
        "POST",
        "/instances",
        stub.Reply(202, {"instance": INSTANCE}, delay=0.5),
        stub.Reply(202, {"instance": {**INSTANCE, "id": "i-2"}}),
    )
    stub.add("GET", "/instances", stub.Reply(200, listing("instances")))
    assert client.create_instance(SPEC).id == "i-2"
    assert len(stub.calls("POST", "/instances")) == 2
    assert len(stub.calls("GET", "/instances")) == 1


def test_lookup_ignores_lookalikes(stub, client):
    other_region = {**INSTANCE, "id": "i-9", "region": "ams"}
    other_tags = {**INSTANCE, "id": "i-8", "tags": ["launcher"]}
    stub.add("POST", "/instances", stub.Reply(drop=True), stub.Reply(202, {"instance": INSTANCE}))
    stub.add("GET", "/instances", stub.Reply(200, listing("instances", other_region, other_tags)))
    assert client.create_instance(SPEC).id == "i-1"
    assert len(stub.calls("POST", "/instances")) == 2


def test_create_whose_lookup_fails_is_an_ambiguous_create_error(stub, client):
    stub.add("POST", "/instances", stub.error(502, "bad gateway"))
    stub.add("GET", "/instances", stub.error(503, "unavailable"))
    with pytest.raises(AmbiguousCreateError) as info:
        client.create_instance(SPEC)
    err = info.value
    assert "may have succeeded" in str(err) and "instance labelled 'run-42'" in str(err)
    assert "look for the instance labelled 'run-42'" in err.hint
    assert len(stub.calls("POST", "/instances")) == 1


def test_lookup_finding_two_candidates_is_ambiguous(stub, client):
    stub.add("POST", "/instances", stub.error(500, "boom"))
    twin = {**INSTANCE, "id": "i-2"}
    stub.add("GET", "/instances", stub.Reply(200, listing("instances", INSTANCE, twin)))
    with pytest.raises(AmbiguousCreateError, match="2 resources match"):
        client.create_instance(SPEC)


def test_create_gives_up_after_max_attempts_when_nothing_is_ever_created(stub, client):
    stub.add("POST", "/instances", stub.error(500, "boom"))
    stub.add("GET", "/instances", stub.Reply(200, listing("instances")))
    with pytest.raises(TransientError, match="gave up after 4 attempts") as info:
        client.create_instance(SPEC)
    assert not isinstance(info.value, AmbiguousCreateError)
    assert len(stub.calls("POST", "/instances")) == 4
    assert len(stub.calls("GET", "/instances")) == 4


def test_create_refused_with_4xx_is_raised_without_lookup(stub, client):
    stub.add("POST", "/instances", stub.error(400, "Invalid snapshot"))
    with pytest.raises(InvalidRequestError):
        client.create_instance(SPEC)
    assert stub.calls("GET", "/instances") == []


def test_create_rate_limited_is_retried_without_lookup(stub, client, fake_time):
    stub.add(
        "POST",
        "/instances",
        stub.error(429, "slow", **{"Retry-After": "2"}),
        stub.Reply(202, {"instance": INSTANCE}),
    )
    assert client.create_instance(SPEC).id == "i-1"
    assert stub.calls("GET", "/instances") == []
    assert fake_time.sleeps == [2.0]


def test_create_answer_without_the_object_is_an_error(stub, client):
    stub.add("POST", "/instances", stub.Reply(202, {"something": {}}))
    with pytest.raises(TransientError, match="without 'instance'"):
        client.create_instance(SPEC)


def test_block_create_resolves_by_label(stub, client):
    block = {"id": "b-1", "label": "cache-42", "region": "ewr", "size_gb": 100}
    stub.add("POST", "/blocks", stub.error(504, "timeout"))
    stub.add("GET", "/blocks", stub.Reply(200, listing("blocks", block)))
    assert client.create_block(BlockSpec("ewr", 100, "cache-42")).id == "b-1"
    assert len(stub.calls("POST", "/blocks")) == 1


# -- delete ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "existed", "deletes"),
    [
        (["204"], True, 1),
        (["404"], False, 1),
        (["500", "404"], True, 2),  # the first DELETE worked; its answer was lost
        (["drop", "204"], True, 2),
        (["429", "404"], False, 2),
    ],
)
def test_delete_is_idempotent(stub, client, script, existed, deletes):
    replies = {
        "204": stub.Reply(204),
        "404": stub.error(404, "Invalid instance-id."),
        "500": stub.error(500, "boom"),
        "429": stub.error(429, "slow"),
        "drop": stub.Reply(drop=True),
    }
    stub.add("DELETE", "/instances/i-1", *(replies[s] for s in script))
    assert client.delete_instance("i-1") is existed
    assert len(stub.calls("DELETE", "/instances/i-1")) == deletes


def test_delete_that_keeps_failing_says_the_resource_may_still_exist(stub, client):
    stub.add("DELETE", "/blocks/b-1", stub.error(500, "boom"))
    with pytest.raises(TransientError, match="may still exist"):
        client.delete_block("b-1")
    assert len(stub.calls("DELETE", "/blocks/b-1")) == 4


# -- attach / detach ---------------------------------------------------------------------------


def block(attached_to: str = "") -> dict:
    return {"block": {"id": "b-1", "status": "active", "attached_to_instance": attached_to}}


def test_attach_sends_live_by_default(stub, client):
    stub.add("POST", "/blocks/b-1/attach", stub.Reply(204))
    client.attach_block("b-1", "i-1")
    assert stub.received[0].json() == {"instance_id": "i-1", "live": True}


def test_attach_after_ambiguous_failure_reads_back_and_stops_if_attached(stub, client):
    stub.add("POST", "/blocks/b-1/attach", stub.error(500, "boom"))
    stub.add("GET", "/blocks/b-1", stub.Reply(200, block("i-1")))
    client.attach_block("b-1", "i-1", live=False)
    assert len(stub.calls("POST", "/blocks/b-1/attach")) == 1
    assert stub.received[0].json()["live"] is False


def test_attach_after_ambiguous_failure_retries_if_not_attached(stub, client):
    stub.add("POST", "/blocks/b-1/attach", stub.Reply(drop=True), stub.Reply(204))
    stub.add("GET", "/blocks/b-1", stub.Reply(200, block("")))
    client.attach_block("b-1", "i-1")
    assert len(stub.calls("POST", "/blocks/b-1/attach")) == 2


def test_attach_that_never_lands_gives_up(stub, client):
    stub.add("POST", "/blocks/b-1/attach", stub.error(503, "busy"))
    stub.add("GET", "/blocks/b-1", stub.Reply(200, block("")))
    with pytest.raises(TransientError, match="has not happened"):
        client.attach_block("b-1", "i-1")


def test_attach_whose_read_back_fails_says_to_check(stub, client):
    stub.add("POST", "/blocks/b-1/attach", stub.error(500, "boom"))
    stub.add("GET", "/blocks/b-1", stub.error(404, "gone"))
    with pytest.raises(TransientError, match="reading it back failed") as info:
        client.attach_block("b-1", "i-1")
    assert "check whether attaching block b-1" in info.value.hint


def test_attach_to_a_locked_instance_is_a_conflict(stub, client):
    stub.add("POST", "/blocks/b-1/attach", stub.error(400, "Instance is locked"))
    with pytest.raises(ConflictError):
        client.attach_block("b-1", "i-1")
    assert len(stub.received) == 1


def test_detach_after_ambiguous_failure_reads_back(stub, client):
    stub.add("POST", "/blocks/b-1/detach", stub.error(500, "boom"))
    stub.add("GET", "/blocks/b-1", stub.Reply(200, block("")))
    client.detach_block("b-1")
    assert stub.received[0].json() == {"live": True}
    assert len(stub.calls("POST", "/blocks/b-1/detach")) == 1


# -- SSH keys ----------------------------------------------------------------------------------

PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKeyBodyForTests me@laptop"
SSH_KEY = {"id": "k-1", "name": "launcher-abc", "ssh_key": PUBLIC_KEY,
           "date_created": "2026-01-05T10:00:00+00:00"}


def test_ssh_key_create_sends_name_and_key(stub, client):
    stub.add("POST", "/ssh-keys", stub.Reply(201, {"ssh_key": SSH_KEY}))
    created = client.create_ssh_key("launcher-abc", f"  {PUBLIC_KEY}\n")
    assert (created.id, created.name, created.ssh_key) == ("k-1", "launcher-abc", PUBLIC_KEY)
    assert stub.calls("POST", "/ssh-keys")[0].json() == {"name": "launcher-abc",
                                                        "ssh_key": PUBLIC_KEY}


def test_ssh_key_create_resolves_by_name_and_key_body(stub, client):
    lookalikes = [{**SSH_KEY, "id": "k-0", "name": "other"},
                  {**SSH_KEY, "id": "k-9", "ssh_key": "ssh-ed25519 AAAAdifferent me@laptop"},
                  {**SSH_KEY, "ssh_key": PUBLIC_KEY.replace("me@laptop", "renamed")}]
    stub.add("POST", "/ssh-keys", stub.error(500, "internal error"))
    stub.add("GET", "/ssh-keys", stub.Reply(200, listing("ssh_keys", *lookalikes)))
    assert client.create_ssh_key("launcher-abc", PUBLIC_KEY).id == "k-1"
    assert len(stub.calls("POST", "/ssh-keys")) == 1


def test_ssh_key_create_needs_a_name_and_a_key(client):
    with pytest.raises(ConfigError, match="needs a name and a public key"):
        client.create_ssh_key("", PUBLIC_KEY)
    with pytest.raises(ConfigError, match="needs a name and a public key"):
        client.create_ssh_key("launcher-abc", "  ")
