"""A whole run on a sandbox machine: the launcher's API calls create a volume and an instance
with the rendered document; the ProcessHypervisor boots it by running the real runner, which
trains, uploads to SeaweedFS and deletes its volume and itself through the emulator."""

from __future__ import annotations

import json
from pathlib import Path

from launcher.runner.health import CPU_ONLY_NOTE
from launcher.runner.statefiles import alive
from launcher.sandbox import default_trainer_user

from .conftest import RUN_ID, SECRET_VALUES, Bed

REWRITTEN = {"paths.state_dir", "paths.log_dir", "paths.code_dir", "paths.secrets_file",
             "paths.trainer_user", "volume.mount_point", "metadata_url", "boot.files",
             "boot.secrets_file", "boot.metadata_url"}


def pid_gone(pid: int) -> bool:
    """Not running (a zombie waiting for init to reap it counts as gone)."""
    return not alive(pid)


def test_a_document_boots_trains_uploads_and_deletes_itself(make_bed, tmp_path):
    bed: Bed = make_bed()
    run = bed.launch()
    assert bed.wait_gone(run, 60), bed.diagnostics(run.instance_id)
    view = bed.hypervisor.wait(run.instance_id, 30)
    assert (view.state, view.exit_code) == ("exited", 0), bed.diagnostics(run.instance_id)
    assert str(view) == f"{run.instance_id}: exited(0)"

    prefix = f"runs/{RUN_ID}/"
    remote = bed.remote(prefix)
    for key in ("status.json", "manifest.json", "logs/runner.log", "logs/train.log",
                "logs/health.json", "checkpoints/step-3/model.bin", "reports/report.json"):
        assert f"{prefix}{key}" in remote, sorted(remote)
    status = json.loads(bed.fetch(f"{prefix}status.json", tmp_path))
    assert status["state"] == "succeeded", status
    assert status["left_behind"] == []
    assert CPU_ONLY_NOTE in status["notes"]
    assert any(note.startswith("TEST HOST:") for note in status["notes"])
    manifest = json.loads(bed.fetch(f"{prefix}manifest.json", tmp_path))
    assert manifest["exit_code"] == 0 and manifest["dataset"]["files"] == 2
    train_log = bed.fetch(f"{prefix}logs/train.log", tmp_path).decode()
    assert f"user {default_trainer_user()} uid" in train_log and "done" in train_log

    host = view.sandbox / "host"
    assert view.console.is_file() and "supervise" in view.console.read_text()
    pid = view.pid
    assert pid is not None and pid_gone(pid)
    train_pid = int((host / "var/lib/launcher/train.pid").read_text().split()[0])
    assert pid_gone(train_pid)
    assert_sandbox_record(host)
    assert_host_key_published(bed, host, prefix, tmp_path)
    assert_fakes_used(host)
    assert_no_secret(bed, view.console, host / "etc/launcher/sandbox.json")
    assert not (host / "var/lib/cloud/instance/user-data.txt").exists()  # hardening ran
    assert not (host / "etc/launcher/secrets.env").exists()  # gone with the machine


def assert_host_key_published(bed: Bed, host: Path, prefix: str, tmp_path: Path) -> None:
    """The host key the machine got at boot reached the bucket, its comment dropped."""
    kind, blob = (host / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2]
    assert bed.fetch(f"{prefix}ssh_host_keys.pub", tmp_path).decode() == f"{kind} {blob}\n"
    record = json.loads((host / "etc/launcher/sandbox.json").read_text())
    assert record["ssh_host_key"] in ("ssh-keygen", "fixed")


def assert_sandbox_record(host: Path) -> None:
    record = json.loads((host / "etc/launcher/sandbox.json").read_text())
    rewrites = {r["field"]: r for r in record["rewrites"]}
    assert set(rewrites) == REWRITTEN
    assert rewrites["paths.state_dir"]["document"] == "/var/lib/launcher"
    assert rewrites["paths.state_dir"]["sandbox"] == str(host / "var/lib/launcher")
    assert rewrites["metadata_url"]["document"] == "http://169.254.169.254"
    assert rewrites["metadata_url"]["sandbox"].startswith("http://127.0.0.1:")
    assert all(r["why"] for r in record["rewrites"])
    files = {f["path"]: f for f in record["files"]}
    assert files["/opt/launcher/boot.pyz"]["encoding"] in ("b64", "gz+b64")
    assert files["/etc/launcher/boot.json"]["rewritten"] is True
    assert files["/etc/launcher/secrets.env"]["permissions"] == "0600"
    assert "/etc/launcher/run.json" not in files  # the bootstrap fetched it
    assert record["document_exec_start_pre"][1:] == ["/opt/launcher/boot.pyz", "fetch",
                                                     "--boot", "/etc/launcher/boot.json"]
    assert record["document_exec_start"][1:] == ["/opt/launcher/runner.pyz", "supervise",
                                                 "--spec", "/etc/launcher/run.json"]
    assert (host / "opt/launcher/runner.pyz").stat().st_mode & 0o777 == 0o755
    spec = json.loads((host / "etc/launcher/run.json").read_text())
    assert spec["paths"]["trainer_user"] == default_trainer_user()
    assert spec["api_url"].startswith("http://127.0.0.1:")


def assert_fakes_used(host: Path) -> None:
    calls = [json.loads(line)["tool"]
             for line in (host / "var/log/sandbox-fakes.jsonl").read_text().splitlines()]
    assert {"iptables", "blkid", "mkfs.ext4", "mount", "python3"} <= set(calls), calls
    assert "nvidia-smi" not in calls and "useradd" not in calls
    mounts = (host / "proc/mounts").read_text()
    assert f" {host / 'mnt/cache'} ext4 " in mounts
    assert " ext4 defaults,noatime,nofail 0 2" in (host / "etc/fstab").read_text()


def assert_no_secret(bed: Bed, *paths: Path) -> None:
    texts = [p.read_text() for p in paths] + bed.log
    leaks = [n for n, text in enumerate(texts) if any(v in text for v in SECRET_VALUES)]
    assert not leaks, f"a secret value appears in text #{leaks}"


def test_a_second_session_in_the_same_root_starts_afresh(make_bed):
    """A seeded emulator hands out the same ids again: the earlier machine is set aside and
    the earlier volume's marker dropped, so the new run neither resumes nor skips mkfs."""
    first: Bed = make_bed()
    run = first.launch()
    assert first.wait_gone(run, 60), first.diagnostics(run.instance_id)
    first.hypervisor.close()
    second: Bed = make_bed()
    again = second.launch()
    assert again.instance_id == run.instance_id  # the premise: the same id again
    assert second.wait_gone(again, 60), second.diagnostics(again.instance_id)
    view = second.hypervisor.wait(again.instance_id, 30)
    assert (view.state, view.exit_code) == ("exited", 0), second.diagnostics(again.instance_id)
    assert view.sandbox.with_name(f"{view.sandbox.name}.previous-1").is_dir()
    console = view.console.read_text()
    assert "is blank; formatting it as ext4" in console and "going straight" not in console
