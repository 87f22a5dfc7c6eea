"""The whole run, end to end, with the real runner: ``runner.pyz`` exactly as the cloud-init
document carries it, run by the image's ``/usr/bin/python3`` as ``supervise --spec run.json``.

harden → volume → code → env → data → health → train (as a real unprivileged user) → upload (real
SeaweedFS) → teardown (the Vultr emulator, found through a metadata server). Only the
machine's edge is faked (see ``conftest.py``). Three endings: a clean run; training exiting
3 (outputs still uploaded, everything deleted); an upload the bucket refuses (the volume is
kept and named, the instance still deleted).
"""

from __future__ import annotations

import json
import os
import pwd

import pytest

from launcher.runner.health import CPU_ONLY_NOTE

from .conftest import DATA_PREFIX, DATASET, RUN_ID, SYSTEM_PYTHON, Bed

pytestmark = pytest.mark.need(
    os.geteuid() == 0,
    "the end-to-end run trains as a real unprivileged user: the runner must create "
           "it (useradd) and drop to it, which needs root")

PHASES = ["harden", "volume", "code", "env", "data", "health", "train", "upload", "teardown"]
DATA_FILES, DATA_BYTES = len(DATASET), sum(len(d) for d in DATASET.values())
BLOCK_ROUTE, DETACH_ROUTE, INSTANCE_ROUTE = "/blocks/{id}", "/blocks/{id}/detach", \
    "/instances/{id}"


def phases(status: dict) -> dict[str, dict]:
    return {record["name"]: record for record in status["phases"]}


def assert_no_secret_anywhere(bed: Bed) -> None:
    """No secret value in any file of the bed (logs, state, the volume, the downloaded
    objects, cloud-init's cache) nor in the runner's own output."""
    where = bed.leaks(bed.result.stdout, bed.result.stderr)
    assert not where, f"a secret value appears in: {where}"
    assert not (bed.host / "var/lib/cloud/instance/user-data.txt").exists()


def assert_edge_used(bed: Bed) -> None:
    """What the runner did at the machine's edge: iptables rule checked then inserted, the
    blank fake volume formatted, mounted and recorded in fstab, cloud-init's copies gone."""
    calls = (bed.root / "fake-state/iptables.log").read_text().splitlines()
    rule = "OUTPUT -d 169.254.169.254 -m owner ! --uid-owner 0 -j REJECT"
    assert calls == [f"-w -C {rule}", f"-w -I {rule}"]
    tool_calls = [json.loads(line)["tool"]
                  for line in (bed.root / "fake-state/calls.jsonl").read_text().splitlines()]
    assert {"blkid", "mkfs.ext4", "mount", "python3", "dd"} <= set(tool_calls)
    mounts = (bed.host / "proc/mounts").read_text()
    assert f"{bed.host / 'dev/vdb'} {bed.spec.volume.mount_point} ext4" in mounts
    fstab = (bed.host / "etc/fstab").read_text()
    assert f" {bed.spec.volume.mount_point} ext4 defaults,noatime,nofail 0 2" in fstab
    cache = bed.host / "var/lib/cloud/instances" / bed.instance_id
    assert sorted(p.name for p in cache.iterdir()) == ["vendor-data.txt"]


def assert_trained_unprivileged(bed: Bed, train_log: str) -> None:
    user = pwd.getpwnam(bed.spec.paths.trainer_user)  # created by the runner
    assert user.pw_uid != 0
    assert f"user: {user.pw_name} uid {user.pw_uid}" in train_log
    assert "secrets file: unreadable" in train_log
    assert "wandb key set: True" in train_log
    assert ("WANDB_TAGS=e2e,environment=vultr,region=sea,plan=vcg-a100-6c-60g-40vram,"
            "gpu=NVIDIA_A100,") in train_log
    assert "data files: a.txt,b.bin,nested/deep/c.txt" in train_log  # the decoy is not there
    assert "step 3 loss 0.1250" in train_log


def test_a_clean_run_trains_uploads_and_leaves_nothing_billing(make_bed):
    bed = make_bed()
    result = bed.run()
    assert result.returncode == 0, bed.diagnostics()

    status = bed.status()
    assert status["state"] == "succeeded" and status["reason"] == ""
    assert [p["name"] for p in status["phases"]] == PHASES
    assert all(p["ok"] is True for p in status["phases"]), status["phases"]
    assert status["left_behind"] == []
    assert phases(status)["train"]["detail"] == "exit status 0"
    assert phases(status)["upload"]["detail"] == "verified"
    assert CPU_ONLY_NOTE in status["notes"]
    assert any(note.startswith("TEST HOST:") for note in status["notes"])
    assert any(f"sha256={bed.spec.code.sha256}" in note for note in status["notes"])

    prefix = bed.spec.run_prefix
    remote = bed.remote()
    for key in ("checkpoints/step-3/model.bin", "reports/report.json", "logs/runner.log",
                "logs/train.log", "logs/health.json", "status.json", "manifest.json"):
        assert f"{prefix}/{key}" in remote, sorted(remote)
    got = bed.download()
    manifest = json.loads((got / "manifest.json").read_text())
    assert manifest["run_id"] == RUN_ID and manifest["exit_code"] == 0
    assert manifest["reason"] == "" and manifest["command"][0] == SYSTEM_PYTHON
    assert manifest["state"] == "succeeded"
    assert manifest["dataset"]["files"] == DATA_FILES
    assert manifest["dataset"]["bytes"] == DATA_BYTES
    assert manifest["dataset"]["source"] == f"s3://{bed.bucket}/{DATA_PREFIX}/"
    report = json.loads((got / "reports/report.json").read_text())
    assert report == {"steps": 3, "loss": 0.125, "data_files": DATA_FILES,
                      "data_bytes": DATA_BYTES, "run_id": RUN_ID}
    assert (got / "checkpoints/step-3/model.bin").read_bytes().endswith(b"3")
    train_log = (got / "logs/train.log").read_text()
    assert_trained_unprivileged(bed, train_log)
    assert "phase train: ok" in (got / "logs/runner.log").read_text()
    assert json.loads((got / "status.json").read_text())["state"] == "succeeded"

    assert bed.block_id not in bed.emulator.state.blocks
    assert bed.instance_id not in bed.emulator.state.instances
    calls = bed.new_mutations()
    assert [(m, r) for m, r, _ in calls] == [("POST", DETACH_ROUTE), ("DELETE", BLOCK_ROUTE),
                                             ("DELETE", INSTANCE_ROUTE)], calls
    assert all(200 <= (s or 0) < 300 for _, _, s in calls), calls
    assert_edge_used(bed)
    assert_no_secret_anywhere(bed)


def test_a_failed_training_still_uploads_then_deletes_everything(make_bed):
    bed = make_bed(("--exit", "3"))
    result = bed.run()
    assert result.returncode == 1, bed.diagnostics()

    status = bed.status()
    assert status["state"] == "failed"
    assert status["reason"] == "train: exit status 3"
    assert [p["name"] for p in status["phases"]] == PHASES
    records = phases(status)
    assert records["train"]["ok"] is False and records["train"]["detail"] == "exit status 3"
    assert records["upload"]["ok"] is True and records["upload"]["detail"] == "verified"
    assert records["teardown"]["ok"] is True and status["left_behind"] == []

    got = bed.download()
    manifest = json.loads((got / "manifest.json").read_text())
    assert manifest["exit_code"] == 3 and manifest["reason"] == "train: exit status 3"
    assert manifest["state"] == "failed"
    assert manifest["dataset"]["files"] == DATA_FILES
    assert (got / "checkpoints/step-3/model.bin").is_file()
    assert json.loads((got / "reports/report.json").read_text())["steps"] == 3
    train_log = (got / "logs/train.log").read_text()
    assert "done, exiting with 3" in train_log
    assert "exited with status 3" in (got / "logs/runner.log").read_text()
    assert json.loads((got / "status.json").read_text())["state"] == "failed"

    assert bed.block_id not in bed.emulator.state.blocks  # the upload was verified
    assert bed.instance_id not in bed.emulator.state.instances
    assert [(m, r) for m, r, _ in bed.new_mutations()] == [
        ("POST", DETACH_ROUTE), ("DELETE", BLOCK_ROUTE), ("DELETE", INSTANCE_ROUTE)]
    assert_no_secret_anywhere(bed)


def test_an_upload_the_bucket_refuses_keeps_the_volume_and_still_deletes_the_instance(
        make_bed):
    # The runner's bucket identity may read and list but not write: code and data arrive,
    # nothing goes up.
    bed = make_bed(read_only=True)
    result = bed.run()
    assert result.returncode == 1, bed.diagnostics()

    status = bed.status()
    assert status["state"] == "failed"
    assert status["reason"].startswith("upload:"), status["reason"]
    assert [p["name"] for p in status["phases"]] == PHASES
    records = phases(status)
    assert all(records[name]["ok"] is True for name in PHASES[:6]), status["phases"]
    assert records["upload"]["ok"] is False
    assert records["upload"]["detail"].startswith("not verified: ")
    assert "AccessDenied" in records["upload"]["detail"]  # the cause, not just the verdict
    assert len(status["left_behind"]) == 1, status["left_behind"]
    kept = status["left_behind"][0]
    assert kept.startswith(f"volume {bed.block_id} kept: upload not verified")
    assert "curl -X DELETE" in kept and f"/blocks/{bed.block_id}" in kept

    runner_log = bed.log("runner.log")
    assert "AccessDenied" in runner_log and "NOT verified" in runner_log
    assert bed.remote() == {}  # nothing reached the bucket
    mount = bed.spec.volume.mount_point
    assert os.path.isfile(os.path.join(mount, "checkpoints/step-3/model.bin"))  # kept on it

    blocks = bed.emulator.state.blocks
    assert bed.block_id in blocks  # kept: it may hold the only copy
    assert blocks[bed.block_id].attached_to == ""  # detached by the instance's deletion
    assert bed.instance_id not in bed.emulator.state.instances
    assert [(m, r) for m, r, _ in bed.new_mutations()] == [("DELETE", INSTANCE_ROUTE)]
    assert_no_secret_anywhere(bed)
