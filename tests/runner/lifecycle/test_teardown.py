"""Teardown against the emulator: what is deleted, what is kept and named, retries, the
fallback to the run tag, and idempotency when two teardowns race."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import threading
from pathlib import Path

from launcher.emulator.errors import Refusal
from launcher.runner.statefiles import INSTANCE_ID, TEARDOWN_STATE
from launcher.runner.teardown import teardown, unmount

from .conftest import FAST, closed_port_url, make_context, read_status


def run_teardown(world, verified: bool = True, **options):
    opts = dataclasses.replace(FAST, **options.pop("opts", {}))
    return teardown(world.ctx, verified, final_upload=world.final_upload, options=opts,
                    **options)


def test_deletes_the_volume_then_the_instance(world):
    assert run_teardown(world) == []
    assert not world.block_exists() and not world.instance_exists()
    assert world.uploads == ["alive"]  # the last status went out before the instance went
    routes = [(e.method, e.route) for e in world.emulator.mutations()]
    assert routes[-3:] == [("POST", "/blocks/{id}/detach"), ("DELETE", "/blocks/{id}"),
                           ("DELETE", "/instances/{id}")]
    detach = [e for e in world.emulator.mutations() if e.route == "/blocks/{id}/detach"]
    assert detach[0].note is None  # live: no reboot
    status = read_status(world.spec)
    assert status["left_behind"] == []
    assert any(f"deleting instance {world.instance_id}" in n for n in status["notes"])


def test_upload_not_verified_keeps_the_volume_and_names_it(world):
    left = run_teardown(world, verified=False)
    assert world.block_exists() and not world.instance_exists()
    assert len(left) == 1 and left[0].startswith(
        f"volume {world.block_id} kept: upload not verified — recover its data, then delete it: "
        "curl -X DELETE")
    assert left[0].endswith(f"/blocks/{world.block_id}")
    assert read_status(world.spec)["left_behind"] == left
    assert not any(e.route == "/blocks/{id}/detach" for e in world.emulator.mutations())


def test_keep_volume_keeps_it(world):
    world.respec(volume=dataclasses.replace(world.spec.volume, keep_volume=True))
    left = run_teardown(world)
    assert world.block_exists() and not world.instance_exists()
    assert len(left) == 1 and left[0].startswith(f"volume {world.block_id} kept as requested")
    assert "$VULTR_KEY" in left[0]


def test_the_keep_volume_override(world):
    left = run_teardown(world, keep_volume=True)
    assert world.block_exists() and "kept as requested" in left[0]


def test_a_locked_instance_during_detach_is_retried(world):
    store = world.emulator.state
    real_detach, refused = store.detach_block, []

    def locked_once(block_id: str, live: bool):
        if not refused:
            refused.append(block_id)
            raise Refusal(400, "instance_locked")
        return real_detach(block_id, live)

    store.detach_block = locked_once
    assert run_teardown(world) == []
    assert refused and not world.block_exists() and not world.instance_exists()


def test_server_errors_and_rate_limits_are_retried(world):
    world.emulator.inject("POST /blocks/{id}/detach", "502")
    world.emulator.inject("DELETE /blocks/{id}", "429", retry_after=1)
    world.emulator.inject("DELETE /instances/{id}", "503", count=2)
    world.emulator.inject("GET /blocks/{id}", "500")
    assert run_teardown(world) == []
    assert not world.block_exists() and not world.instance_exists()
    faults = [e.fault for e in world.emulator.events if e.fault]
    assert sorted(faults) == ["429", "500", "502", "503", "503"]


def test_metadata_down_finds_the_instance_by_tag(world):
    world.respec(metadata_url=closed_port_url())
    assert run_teardown(world) == []
    assert not world.instance_exists()
    lists = [e for e in world.emulator.events if e.route == "/instances" and e.method == "GET"]
    assert lists and lists[0].query.get("tag") == "run:run-life-1"
    cached = Path(world.spec.paths.state_dir) / INSTANCE_ID
    assert cached.read_text().strip() == world.instance_id


def test_a_second_teardown_is_a_no_op(world):
    assert run_teardown(world, verified=False) != []
    seen = len(world.emulator.events)
    again = run_teardown(world, verified=True)
    assert again == run_teardown(world, verified=False)
    assert len(world.emulator.events) == seen and world.block_exists()
    record = json.loads((Path(world.spec.paths.state_dir) / TEARDOWN_STATE).read_text())
    assert record["volume"] == "kept" and record["instance"] == "deleted"


def test_racing_teardowns_do_the_work_once(world):
    results: list[list[str]] = []
    contexts = [world.ctx, make_context(world.spec)]
    threads = [threading.Thread(target=lambda c=c: results.append(
        teardown(c, True, final_upload=world.final_upload, options=FAST))) for c in contexts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [[], []] and not world.instance_exists()
    deletes = [e for e in world.emulator.mutations() if e.method == "DELETE"]
    assert len(deletes) == 2  # one volume, one instance: nothing twice
    assert world.uploads == ["alive"]


def test_an_instance_that_cannot_be_deleted_is_named_and_retried_later(world):
    store = world.emulator.state
    real_delete, broken = store.delete_instance, {"yes": True}

    def delete(instance_id: str) -> None:
        if broken["yes"]:
            raise Refusal(500, "internal")
        real_delete(instance_id)

    store.delete_instance = delete
    left = run_teardown(world, opts={"api_policy": dataclasses.replace(
        FAST.api_policy, deadline_s=0.3)})
    assert not world.block_exists() and world.instance_exists()
    assert len(left) == 1 and left[0].startswith(f"instance {world.instance_id} still exists")
    assert f"/instances/{world.instance_id}" in left[0] and "Vultr UI" in left[0]
    assert read_status(world.spec)["left_behind"] == left
    assert world.uploads == ["alive", "alive"]  # again after the failure, so the bucket knows
    broken["yes"] = False
    assert run_teardown(world) == []
    assert not world.instance_exists()
    assert any("resolved" in note for note in read_status(world.spec)["notes"])


def test_without_a_key_everything_is_named(world, tmp_path):
    from launcher.runner.spec import RunSecrets

    world.ctx = make_context(world.spec, RunSecrets({}))
    left = run_teardown(world)
    assert world.block_exists() and world.instance_exists()
    assert [line.split(" ")[0] for line in left] == ["volume", "instance"]


def test_unmount_falls_back_to_lazy(world, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "umount.log"
    script = bin_dir / "umount"
    script.write_text(f'#!/bin/sh\necho "$@" >> {log}\n'
                      '[ "$1" = "-l" ] && exit 0\necho "target is busy" >&2\nexit 32\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    ctx = make_context(world.spec, env={"PATH": str(bin_dir)})
    mounted = {"yes": True}
    opts = dataclasses.replace(FAST, is_mounted=lambda path: mounted["yes"])
    assert unmount(ctx, opts)
    point = world.spec.volume.mount_point
    assert log.read_text().splitlines() == [point, f"-l {point}"]
    mounted["yes"] = False
    log.unlink()
    assert unmount(ctx, opts) and not log.exists()


def test_the_lock_is_honoured(world):
    import fcntl

    lock = Path(world.spec.paths.state_dir) / "teardown.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        left = run_teardown(world, opts={"lock_wait_s": 0.3})
    finally:
        os.close(fd)
    assert len(left) == 1 and left[0].startswith("teardown not run")
    assert world.instance_exists()


def test_a_refused_key_is_named_as_the_reason_and_never_retried(world):
    world.emulator.inject("POST /blocks/{id}/detach", "refuse", status=401, error="unauthorized")
    world.emulator.inject("DELETE /instances/{id}", "refuse", status=403,
                          error="unauthorized_ip")
    volume, instance = run_teardown(world)
    assert world.block_exists() and world.instance_exists()
    for line in (volume, instance):
        assert "this instance's key was refused" in line and "use a key that may delete it" in line
    assert "401" in volume and "403" in instance
    refused = [e for e in world.emulator.events if e.fault == "refuse"]
    assert len(refused) == 2  # each refusal once: a refused key is not worth a retry
