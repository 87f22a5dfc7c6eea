"""The runner's own Vultr client (stdlib) against the emulator: retries, idempotent deletes,
"Server is currently locked", the key kept out of every message, and "which instance am I"."""

from __future__ import annotations

import pytest
from support.keys import FAKE_VULTR_KEY

from launcher.emulator.errors import Refusal
from launcher.runner.retry import RetryPolicy, decide, retry_reason
from launcher.runner.vultr import (
    ApiError,
    SelfApi,
    instance_by_tag,
    instance_id,
    metadata_document,
)
from launcher.vultr import InstanceSpec

from .conftest import FAST_POLICY, PLAN, REGION, RUN_ID, SNAPSHOT_ID, closed_port_url


def api_for(url: str, key: str = FAKE_VULTR_KEY, **policy) -> SelfApi:
    return SelfApi(url, key, timeout=5.0, policy=RetryPolicy(**{**FAST_POLICY.__dict__,
                                                                 **policy}))


def calls(emulator, method: str, route: str) -> int:
    return sum(1 for e in emulator.events if e.method == method and e.route == route)


@pytest.mark.parametrize(("status", "text", "retry"), [
    (0, "", True), (429, "", True), (500, "", True), (502, "", True), (503, "", True),
    (501, "", False), (400, "Invalid plan chosen.", False), (401, "", False),
    (404, "Block storage not found.", False), (400, "Instance is locked", True),
    (400, "Server is currently locked", True), (500, "Server is currently locked", True),
    (409, "Server is locked.", True),
])
def test_which_failures_are_retried(status, text, retry):
    assert (retry_reason(status, text) is not None) is retry


def test_retry_after_is_honoured_and_capped():
    policy = RetryPolicy(max_attempts=None, base_delay=1.0, max_delay=8.0, retry_after_cap=30.0)
    rng = __import__("random").Random(1)
    assert decide(429, 1, policy, rng, retry_after="7").delay == 7.0
    assert decide(429, 1, policy, rng, retry_after="900").delay == 30.0
    assert 0.5 <= decide(503, 1, policy, rng).delay <= 1.0
    assert decide(503, 10, policy, rng).delay <= 8.0


def test_the_instance_tries_until_its_deadline_not_a_count_of_attempts():
    assert SelfApi("http://127.0.0.1:9/v2", "k").policy.max_attempts is None
    assert decide(503, 1000, RetryPolicy(max_attempts=None)).retry


def test_a_post_not_declared_safe_is_not_repeated_after_a_failure_that_may_have_acted(
        emulator, world):
    emulator.inject("POST /blocks/{id}/attach", "500", count=3)
    before = calls(emulator, "POST", "/blocks/{id}/attach")
    with pytest.raises(ApiError, match="not repeated") as failure:
        api_for(emulator.url).request("POST", f"/blocks/{world.block_id}/attach",
                                      {"instance_id": "x", "live": True})
    assert failure.value.status == 500
    assert calls(emulator, "POST", "/blocks/{id}/attach") == before + 1


def test_a_detach_is_declared_safe_to_repeat_after_a_5xx(emulator, world):
    emulator.inject("POST /blocks/{id}/detach", "502", count=2)
    before = calls(emulator, "POST", "/blocks/{id}/detach")
    api_for(emulator.url).detach_block(world.block_id)
    assert calls(emulator, "POST", "/blocks/{id}/detach") == before + 3


def test_5xx_and_429_are_retried(emulator, client, world):
    emulator.inject("GET /blocks/{id}", "503", count=2)
    emulator.inject("GET /blocks/{id}", "429", retry_after=1)
    api = api_for(emulator.url)
    before = calls(emulator, "GET", "/blocks/{id}")
    assert api.get_block(world.block_id)["id"] == world.block_id
    assert calls(emulator, "GET", "/blocks/{id}") - before == 4


def test_other_4xx_are_not_retried_and_deletes_of_the_gone_succeed(emulator):
    api = api_for(emulator.url)
    with pytest.raises(ApiError, match="404 Block storage not found") as failure:
        api.get_block("no-such-block")
    assert failure.value.status == 404 and calls(emulator, "GET", "/blocks/{id}") == 1
    assert api.delete_block("no-such-block") is False
    assert api.delete_instance("no-such-instance") is False


@pytest.mark.parametrize("error", ["instance_invalid_id", "instance_pending_destruction"])
def test_a_gone_instance_in_vultr_s_other_wordings_counts_as_deleted(emulator, world, error):
    emulator.inject("DELETE /instances/{id}", "refuse", status=400, error=error)
    assert api_for(emulator.url).delete_instance(world.instance_id) is False
    assert calls(emulator, "DELETE", "/instances/{id}") == 1


def test_a_detach_of_a_detached_volume_in_vultr_s_wording_is_done(emulator, world):
    api = api_for(emulator.url)
    api.detach_block(world.block_id)  # attached: detached now
    api.detach_block(world.block_id)  # "Block storage volume is not currently attached ..."
    assert api.get_block(world.block_id)["attached_to_instance"] == ""
    emulator.inject("POST /blocks/{id}/detach", "refuse", status=404,
                    error="block_not_found")
    with pytest.raises(ApiError, match="404"):
        api.detach_block(world.block_id)


@pytest.mark.parametrize("status", [400, 500])
def test_server_is_currently_locked_is_waited_out_as_a_400_and_as_a_500(emulator, world, status):
    emulator.inject("POST /blocks/{id}/detach", "refuse", count=2, status=status,
                    error="instance_locked")
    api_for(emulator.url).detach_block(world.block_id)
    assert calls(emulator, "POST", "/blocks/{id}/detach") == 3


def test_a_locked_instance_is_retried(emulator, world):
    store = emulator.state
    real_detach, refusals = store.detach_block, []

    def locked_twice(block_id: str, live: bool):
        if len(refusals) < 2:
            refusals.append(block_id)
            raise Refusal(400, "instance_locked")
        return real_detach(block_id, live)

    store.detach_block = locked_twice
    api_for(emulator.url).detach_block(world.block_id)
    assert len(refusals) == 2 and not world.client.get_block(world.block_id).attached_to
    api_for(emulator.url).detach_block(world.block_id)  # detaching the detached: fine


def test_a_lock_that_never_clears_fails_by_the_deadline(emulator, world):
    emulator.state.detach_block = lambda block_id, live: (_ for _ in ()).throw(
        Refusal(400, "instance_locked"))
    with pytest.raises(ApiError, match="gave up after .* instance is locked"):
        api_for(emulator.url, deadline_s=0.3).detach_block(world.block_id)


def test_no_server_is_a_connection_error_retried_until_the_deadline():
    api = api_for(closed_port_url() + "/v2", deadline_s=0.2)
    with pytest.raises(ApiError, match="no answer") as failure:
        api.delete_instance("x")
    assert failure.value.status == 0


def test_the_key_is_in_no_message(emulator):
    api = api_for(emulator.url, key=FAKE_VULTR_KEY)
    assert FAKE_VULTR_KEY not in repr(api)
    wrong = api_for(emulator.url, key=FAKE_VULTR_KEY + "-wrong")
    with pytest.raises(ApiError) as failure:
        wrong.get_block("x")
    assert failure.value.status == 401 and FAKE_VULTR_KEY not in str(failure.value)


def test_only_http_urls(emulator):
    with pytest.raises(ValueError, match="http"):
        SelfApi("file:///etc/passwd", "k")


def test_which_instance_am_i(emulator, world, metadata):
    api = api_for(emulator.url)
    assert metadata_document(world.spec.metadata_url,
                             want="instance-v2-id")["instance-v2-id"] == world.instance_id
    assert instance_id(world.spec.metadata_url, api, RUN_ID) == world.instance_id
    lines: list[str] = []
    down = closed_port_url()
    assert instance_id(down, api, RUN_ID, metadata_deadline_s=0.2,
                       log=lines.append) == world.instance_id
    assert "looking it up by tag run:" in lines[0]
    with pytest.raises(ApiError, match="no instance-v2-id"):
        metadata_document(metadata(""), want="instance-v2-id", deadline_s=0.2)


def test_the_tag_must_name_exactly_one_instance(emulator, world, client):
    api = api_for(emulator.url)
    with pytest.raises(ApiError, match="0 instances carry tag run:other"):
        instance_by_tag(api, "other")
    client.create_instance(InstanceSpec(REGION, PLAN, "twin", snapshot_id=SNAPSHOT_ID,
                                        tags=(f"run:{RUN_ID}",)))
    with pytest.raises(ApiError, match=f"2 instances carry tag run:{RUN_ID}"):
        instance_by_tag(api, RUN_ID)
