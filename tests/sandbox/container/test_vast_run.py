"""Whole Vast runs in the sandbox: the rendered onstart fetches the runner and the spec by
presigned URL (sha256-pinned), starts the runner in container mode, which trains, uploads to
SeaweedFS and destroys its instance through the stub Vast API; and the failure paths."""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import replace

from launcher.runner.health import CPU_ONLY_NOTE
from launcher.runner.statefiles import SUPERVISOR_PID, alive
from launcher.sshkeys import parse_many

from .conftest import INSTANCE_ID, RUN_ID, VastBed

DESTROY = f"/api/v0/instances/{INSTANCE_ID}/"


def test_onstart_to_runner_to_training_to_verified_upload_to_destroy(vast_bed):
    bed: VastBed = vast_bed()
    view = bed.launch(bed.spec())
    view = bed.sandbox.wait_onstart(INSTANCE_ID, 60)
    assert (view.state, view.onstart_exit) == ("running", 0), bed.diagnostics()
    assert bed.wait_destroyed(), bed.diagnostics()
    assert bed.stub.deletes() == [DESTROY] and bed.stub.calls[0].key_ok

    remote = bed.remote()
    for key in ("status.json", "manifest.json", "logs/runner.log", "logs/train.log",
                "checkpoints/step-3/model.bin", "reports/report.json"):
        assert f"runs/{RUN_ID}/{key}" in remote, sorted(remote)
    status = json.loads(bed.fetch("status.json"))
    assert status["state"] == "succeeded" and status["left_behind"] == [], status
    names = [p["name"] for p in status["phases"]]
    assert names == ["harden", "volume", "code", "env", "data", "health", "train", "upload",
                     "teardown"]
    assert CPU_ONLY_NOTE in status["notes"]
    assert any(n.startswith("TEST CONTAINER:") for n in status["notes"])
    assert any("container mode" in n for n in status["notes"])
    assert any(f"destroying instance {INSTANCE_ID}" in n for n in status["notes"])
    train_log = bed.fetch("logs/train.log").decode()
    assert "environment=vast" in train_log and "done" in train_log
    assert json.loads(bed.fetch("reports/report.json")) == ["a.txt", "nested/b.bin"]
    onstart_log = (bed.root / "workspace/launcher/onstart.log").read_text()
    assert "runner started" in onstart_log
    assert (bed.root / "workspace/launcher-cache/checkpoints/step-3/model.bin").is_file()
    assert not bed.leaks(), bed.leaks()


def test_the_containers_ssh_host_keys_are_published_for_launcher_ssh(vast_bed):
    bed: VastBed = vast_bed()
    bed.launch(bed.spec())
    assert bed.wait_destroyed(), bed.diagnostics()
    made = (bed.root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()
    assert made[0] == "ssh-ed25519"  # made by ssh-keygen before the onstart, as sshd's
    published = bed.fetch("ssh_host_keys.pub").decode()
    assert published == f"{made[0]} {made[1]}\n"  # the container's own key, no comment
    assert parse_many(published)[0].blob == made[1]
    status = json.loads(bed.fetch("status.json"))
    assert not any(n.startswith("ssh:") for n in status["notes"]), status["notes"]
    runner_log = bed.fetch("logs/runner.log").decode()
    assert "ssh: published 1 host key(s)" in runner_log


def test_a_failed_training_still_uploads_then_destroys(vast_bed):
    bed: VastBed = vast_bed()
    bed.launch(bed.spec("3"))
    assert bed.wait_destroyed(), bed.diagnostics()
    assert bed.stub.deletes() == [DESTROY]
    status = json.loads(bed.fetch("status.json"))
    assert status["state"] == "failed" and status["reason"] == "train: exit status 3"
    records = {p["name"]: p for p in status["phases"]}
    assert records["upload"]["ok"] is True and records["upload"]["detail"] == "verified"
    assert f"runs/{RUN_ID}/checkpoints/step-3/model.bin" in bed.remote()
    assert not bed.leaks()


def test_a_runner_that_is_not_the_pinned_one_is_never_run_and_the_instance_is_destroyed(
        vast_bed):
    bed: VastBed = vast_bed()
    bed.launch(bed.spec(), tamper=True)
    view = bed.sandbox.wait_onstart(INSTANCE_ID, 60)
    # The onstart destroys its instance before it exits 1: whichever the sandbox saw last,
    # the end stands (a destroyed container is never marked failed after the fact).
    assert view.onstart_exit == 1 and view.state in ("failed", "destroyed"), bed.diagnostics()
    assert bed.wait_destroyed(30), bed.diagnostics()
    assert bed.stub.deletes() == [DESTROY]
    log = (bed.root / "workspace/launcher/onstart.log").read_text()
    assert "runner.pyz: sha256 is not" in log and "destroy: 200" in log
    assert not (bed.root / "workspace/launcher/runner.pyz").exists()
    assert not [k for k in bed.remote() if "/boot/" not in k]  # nothing of the run started


def test_a_killed_supervisor_is_ended_by_the_watchdog(vast_bed):
    bed: VastBed = vast_bed()
    spec = bed.spec("0", "600")
    spec = replace(spec, container=replace(spec.container, watchdog_interval_s=0.5,
                                           watchdog_stale_s=3.0))
    bed.launch(spec)
    train_pid = _wait_for(bed, "train.pid")
    supervisor = int(bed.state(SUPERVISOR_PID).read_text().split()[0])
    os.kill(supervisor, signal.SIGKILL)
    assert bed.wait_destroyed(90), bed.diagnostics()
    assert bed.stub.deletes() == [DESTROY]
    status = json.loads(bed.fetch("status.json"))
    assert status["state"] == "failed", status
    assert any("watchdog: supervisor gone" in n for n in status["notes"]), status["notes"]
    assert not alive(train_pid)  # the watchdog stopped the training too


def _wait_for(bed: VastBed, name: str, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = bed.state(name)
        if path.exists() and path.read_text().strip():
            return int(path.read_text().split()[0])
        time.sleep(0.2)
    raise AssertionError(f"no {name}: {bed.diagnostics()}")

