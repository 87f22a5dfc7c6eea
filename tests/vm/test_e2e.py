"""End to end in QEMU virtual machines, driven through the real command line: ``launcher run``
creates a volume and an instance in the emulator, the instance boots as a VM whose
cloud-init (the real Vultr datasource) fetches the document, the volume is hot-plugged with
its ``mount_id`` as serial, and the real runner formats, mounts, syncs, trains, uploads to
SeaweedFS and deletes its volume and itself. Every assertion reads a signal from outside the
guest: the bucket, the emulator's state and the calls the guest made to it, the VM process,
and ``launcher status``/``logs``/``gc`` output.
"""

from __future__ import annotations

import hashlib

import pytest
from support.keys import ALL_FAKE_KEYS

from launcher.demo.bed import dataset_rows

from .scenarios import RunRecord

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]
FORMATTING = "is blank; formatting it as ext4"


def _only(e2e, name: str, count: int = 1) -> list[RunRecord]:
    records = e2e.records.get(name) or []
    assert len(records) == count, f"scenario {name} did not finish: {records}"
    for record in records:
        assert not record.error, _diagnose(e2e, record)
    return records


def _diagnose(e2e, record: RunRecord) -> str:
    """What a failure needs: the error, the launch output, the console tail and the
    backend's log; the suite's fake keys masked."""
    console = ""
    if record.vm is not None and record.vm.console.exists():
        console = record.vm.console.read_text(errors="replace")[-5000:]
    text = "\n".join([f"{record.scenario} {record.run_id}: {record.error}",
                      f"launch: {record.launch.out[-2000:] if record.launch else '-'}",
                      f"launch stderr: {record.launch.err[-2000:] if record.launch else '-'}",
                      f"vm: {record.vm.state if record.vm else '-'}", "--- console ---",
                      console, "--- machines ---", *e2e.bed.machine_log[-30:]])
    for key in ALL_FAKE_KEYS:
        text = text.replace(key, "***")
    return text


def _guest_calls(e2e, record: RunRecord) -> list[tuple[str, str]]:
    ids = (record.instance_id, record.volume_id)
    return [(c.method, c.path) for c in e2e.bed.guest_calls
            if any(i and i in c.path for i in ids)]


def _deleted_by_guest(e2e, record: RunRecord) -> tuple[bool, bool]:
    calls = _guest_calls(e2e, record)
    return (("DELETE", f"/v2/blocks/{record.volume_id}") in calls,
            ("DELETE", f"/v2/instances/{record.instance_id}") in calls)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _assert_instance_went_by_itself(e2e, record: RunRecord) -> None:
    _, instance_deleted = _deleted_by_guest(e2e, record)
    assert instance_deleted, _diagnose(e2e, record)
    assert record.instance_id not in record.holds_after["instances"]
    assert record.vm is not None and record.vm.state in ("stopped", "exited"), \
        _diagnose(e2e, record)


@pytest.mark.e2e("happy")
def test_happy_path_mounts_syncs_trains_uploads_and_deletes_itself(e2e):
    (run,) = _only(e2e, "happy")
    volume_deleted, _ = _deleted_by_guest(e2e, run)
    calls = _guest_calls(e2e, run)
    assert volume_deleted, _diagnose(e2e, run)
    assert calls.index(("DELETE", f"/v2/blocks/{run.volume_id}")) < \
        calls.index(("DELETE", f"/v2/instances/{run.instance_id}"))
    _assert_instance_went_by_itself(e2e, run)
    assert run.volume_id not in run.holds_after["volumes"]

    status, manifest, probe = run.status, run.manifest, run.probe
    assert status["state"] == "succeeded" and status["left_behind"] == [], status
    assert any(FORMATTING in note for note in status["notes"]), status["notes"]
    assert not any(note.startswith("TEST HOST:") for note in status["notes"])
    assert [p["name"] for p in manifest["phases"]][:7] == \
        ["harden", "volume", "code", "env", "data", "health", "train"]
    assert all(p["ok"] for p in status["phases"] if p["name"] != "teardown"), status["phases"]
    seeded = dataset_rows()
    assert manifest["dataset"]["files"] == len(seeded) == manifest["dataset"]["fetched"]
    assert manifest["dataset"]["bytes"] == sum(len(t.encode()) for t in seeded.values())
    assert probe["data_sha256"] == {name: _sha(text) for name, text in seeded.items()}
    assert " /mnt/cache ext4 " in probe["mount"] and probe["mount"].startswith("/dev/vd")
    prefix = f"runs/{run.run_id}/"
    for key in ("status.json", "manifest.json", "logs/runner.log", "logs/train.log",
                "checkpoints/step-400.json", "reports/report.json", "reports/e2e-probe.json"):
        assert prefix + key in run.outputs, sorted(run.outputs)

    console = run.vm.console.read_text(errors="replace")
    assert "DataSourceVultr" in console  # delivered the way Vultr delivers it
    assert not any(key in console for key in ALL_FAKE_KEYS)
    assert run.cli["status"].code == 0 and "succeeded" in run.cli["status"].out
    assert "none left in Vultr" in run.cli["status"].out
    assert run.cli["logs"].code == 0 and "done: {" in run.cli["logs"].out


@pytest.mark.e2e("happy")
def test_the_training_user_cannot_read_the_secrets_nor_reach_the_metadata_address(e2e):
    (run,) = _only(e2e, "happy")
    probe = run.probe
    assert probe["uid"] != 0 and probe["user"] != "root", probe
    assert probe["secrets_file"].startswith("refused: PermissionError"), probe
    assert probe["metadata"].startswith("unreachable"), probe


@pytest.mark.e2e("reuse")
def test_a_kept_volume_is_reused_without_reformatting_and_synced_incrementally(e2e):
    first, second = _only(e2e, "reuse", 2)
    for run in (first, second):
        _assert_instance_went_by_itself(e2e, run)
        volume_deleted, _ = _deleted_by_guest(e2e, run)
        assert not volume_deleted and run.volume_id in run.holds_after["volumes"]
        assert run.status["state"] == "succeeded", run.status
    assert second.volume_id == first.volume_id
    assert any(f"volume {first.volume_id}" in line for line in second.launched["reused"])
    assert any(FORMATTING in note for note in first.status["notes"])
    assert not any(FORMATTING in note for note in second.status["notes"]), second.status
    one, two = first.manifest["dataset"], second.manifest["dataset"]
    assert (one["files"], one["fetched"]) == (4, 4)
    assert (two["files"], two["fetched"], two["removed"]) == (5, 1, 0)
    assert two["bytes"] > one["bytes"]
    assert "part-99.csv" in second.probe["data_sha256"]


@pytest.mark.e2e("health-failure")
def test_a_failed_health_check_still_tears_down_and_says_why(e2e):
    (run,) = _only(e2e, "health-failure")
    _assert_instance_went_by_itself(e2e, run)
    assert _deleted_by_guest(e2e, run)[0]  # the upload of what there was is verified
    assert run.status["state"] == "failed" and "health" in run.status["reason"]
    assert "disk" in run.status["reason"] and "100000" in run.status["reason"]
    assert "train" not in [p["name"] for p in run.manifest["phases"]]
    assert "disk" in run.cli["status"].out and "health" in run.cli["status"].out
    assert "health" in run.cli["logs_runner"].out and "disk" in run.cli["logs_runner"].out


@pytest.mark.e2e("upload-failure")
def test_an_unreachable_bucket_keeps_the_volume_and_still_deletes_the_instance(e2e):
    (run,) = _only(e2e, "upload-failure")
    assert "key revoked" in run.acts
    _assert_instance_went_by_itself(e2e, run)
    volume_deleted, _ = _deleted_by_guest(e2e, run)
    assert not volume_deleted and run.volume_id in run.holds_after["volumes"]
    assert e2e.bed.proxy.denied > 0
    assert f"runs/{run.run_id}/manifest.json" not in run.outputs
    out = run.cli["status"].out
    assert run.volume_id in out and "detached" in out, out
    assert "final status never reached the bucket" in out, out


@pytest.mark.e2e("runner-killed")
def test_the_watchdog_tears_down_at_the_deadline_when_the_runner_was_killed(e2e):
    (run,) = _only(e2e, "runner-killed")
    assert run.act_results.get("kill") == "pkill exit 0", run.act_results
    _assert_instance_went_by_itself(e2e, run)
    deadline = run.launched["deadline_epoch"]
    deleted_at = [c.t for c in e2e.bed.guest_calls
                  if c.method == "DELETE" and c.path.endswith(run.instance_id)]
    assert deleted_at and deleted_at[0] >= deadline - 1
    assert run.status["state"] == "failed", run.status
    assert any(n.startswith("watchdog: deadline passed") for n in run.status["notes"]), \
        run.status["notes"]
    volume_deleted, _ = _deleted_by_guest(e2e, run)
    assert volume_deleted == (run.status["left_behind"] == []), run.status
    assert "watchdog" in run.cli["status"].out


@pytest.mark.e2e("happy")
def test_gc_removes_what_the_runs_left_and_nothing_is_held_at_the_end(e2e):
    final = e2e.final
    assert final["gc"].code in (0, 1) and final["gc_yes"].code == 0, final["gc_yes"].out
    kept = [v for v in final["before_gc"]["volumes"] if v != final.get("cache_volume")]
    for volume in kept:  # the upload failure's volume: listed, removed with --force
        assert volume in final["gc"].out
    assert final["after_gc"] == {"instances": [], "volumes": []}, final["after_gc"]
    assert not [m for m in e2e.bed.hypervisor.machines() if m.state in ("booting", "running")]
