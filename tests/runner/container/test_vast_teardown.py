"""Container mode's teardown against the stub Vast API: the destroy call, its retries, what
is said when the upload was not verified, what is left when the destroy fails, idempotency."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launcher.runner.statefiles import TEARDOWN_STATE
from launcher.runner.teardown import TeardownOptions, teardown
from launcher.runner.vast import ApiError, VastSelfApi, destroy_now

from .conftest import FAST_POLICY, INSTANCE_ID, SECRET_VALUES
from .stubvast import FAKE_CONTAINER_KEY

FAST = TeardownOptions(api_timeout_s=5.0, lock_wait_s=5.0, api_policy=FAST_POLICY)


def api(stub, key: str = FAKE_CONTAINER_KEY) -> VastSelfApi:
    return VastSelfApi(stub.url, key, timeout=5.0, policy=FAST_POLICY)


def status(ctx) -> dict:
    return json.loads((Path(ctx.spec.paths.state_dir) / "status.json").read_text())


def run(ctx, stub, verified: bool = True, uploads: list | None = None):
    sent = [] if uploads is None else uploads
    return teardown(ctx, verified, final_upload=lambda c: sent.append("final"), options=FAST)


def test_destroy_is_delete_of_the_instance_with_its_key(stub):
    assert api(stub).destroy_instance(INSTANCE_ID) is True
    (call,) = stub.calls
    assert (call.method, call.path, call.key_ok, call.body) == (
        "DELETE", f"/api/v0/instances/{INSTANCE_ID}/", True, "{}")
    assert api(stub).destroy_instance(INSTANCE_ID) is False  # 404: already gone


def test_a_rate_limit_is_retried(stub):
    stub.failures = [(429, {"success": False, "error": "rate_limit_exceeded",
                            "msg": "API requests too frequent endpoint threshold=3.0"})] * 2
    assert api(stub).destroy_instance(INSTANCE_ID) is True
    assert len(stub.deletes()) == 3


def test_success_false_is_a_failure_and_a_refused_key_is_final(stub):
    stub.failures = [(200, {"success": False, "msg": "cannot destroy now"})]
    with pytest.raises(ApiError, match="success=false cannot destroy now"):
        api(stub).destroy_instance(INSTANCE_ID)
    with pytest.raises(ApiError) as caught:
        api(stub, key="FAKE-wrong-key-xyz").destroy_instance(INSTANCE_ID)
    assert caught.value.status == 401 and len(stub.deletes()) == 2
    assert FAKE_CONTAINER_KEY not in repr(api(stub)) and FAKE_CONTAINER_KEY not in str(
        caught.value)


def test_a_verified_run_sends_its_status_then_destroys_the_instance(ctx, stub):
    sent: list[str] = []
    assert run(ctx, stub, uploads=sent) == []
    assert sent == ["final"] and stub.deletes() == [f"/api/v0/instances/{INSTANCE_ID}/"]
    assert INSTANCE_ID not in stub.instances
    record = json.loads((Path(ctx.spec.paths.state_dir) / TEARDOWN_STATE).read_text())
    assert record == {"volume": "none", "instance": "deleted", "left_behind": {}}
    assert any(f"destroying instance {INSTANCE_ID}" in n for n in status(ctx)["notes"])
    assert run(ctx, stub) == [] and len(stub.deletes()) == 1  # done: nothing sent again


def test_an_unverified_upload_names_what_the_destroy_loses_and_still_destroys(ctx, stub):
    checkpoint = ctx.mount / "checkpoints/step-9/model.bin"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"w" * 1000)
    assert run(ctx, stub, verified=False) == []
    assert INSTANCE_ID not in stub.instances
    (note,) = [n for n in status(ctx)["notes"] if "upload NOT verified" in n]
    assert "checkpoints/: 1 file(s), 1,000 bytes" in note and "reports/: 0 file(s)" in note
    assert "checkpoints/step-9/model.bin" in note


def test_a_destroy_that_fails_is_named_with_the_command_and_retried_next_time(ctx, stub):
    stub.failures = [(500, {"success": False, "error": "server_error"})] * 1000
    sent: list[str] = []
    left = run(ctx, stub, uploads=sent)
    assert len(left) == 1 and left[0].startswith(f"instance {INSTANCE_ID} of run")
    assert f"vastai destroy instance {INSTANCE_ID}" in left[0]
    assert f"/instances/{INSTANCE_ID}/" in left[0] and FAKE_CONTAINER_KEY not in left[0]
    assert status(ctx)["left_behind"] == left and sent == ["final", "final"]
    stub.failures.clear()
    assert run(ctx, stub) == []  # the next teardown (the watchdog's) finishes the job
    assert INSTANCE_ID not in stub.instances and status(ctx)["left_behind"] == left


def test_without_the_instance_id_nothing_is_sent_and_it_says_so(ctx, stub):
    ctx.base_env.pop("CONTAINER_ID")
    left = run(ctx, stub)
    assert len(left) == 1 and "no CONTAINER_ID in the container" in left[0]
    assert stub.calls == []


def test_destroy_now_for_the_entry_point(stub):
    lines: list[str] = []
    assert destroy_now(stub.url, FAKE_CONTAINER_KEY, INSTANCE_ID, log=lines.append,
                       policy=FAST_POLICY)
    assert not destroy_now(stub.url, "", INSTANCE_ID, log=lines.append)
    assert "vastai destroy instance 4242" in lines[-1]
    assert not any(v in line for v in SECRET_VALUES for line in lines)

