"""``launcher run --provider vast --stage operator`` of the training repository, end to end in
the sandbox.

The real command line launches against the Vast emulator; the instance is a sandbox container
(a local directory standing for the container's ``/``) whose onstart runs the real runner in
container mode: it lays out its cache on the container disk, fetches the UPS checkout as the
launcher packed it, syncs the data from an S3 server laid out as UPS's bucket, runs UPS's
orchestrator on the CPU, uploads, and destroys its own instance with the key Vast put in the
container. The stage is the shipped one with the same three changes as on Vultr
(``cpu_only``, the tiny model, UPS's prepared CPU python) and no volume section: on Vast the
container's disk is the cache. ``vast.apt_packages`` stays ``[git]``, which this machine has.
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from launcher import cli
from launcher.demo.bed import git_checkout, stop_all
from launcher.demo.vast import ContainerMachines, start_vast, vast_left
from launcher.emulator.vast import VastEmulator, VastTiming
from launcher.sandbox.s3server import Identity, start_s3_server
from launcher.secrets import Secret

from .conftest import UPS_PYTHON, need
from .test_launch_in_sandbox import BUCKET, UPS_KEYS, reachable_python, read, sandbox_configs

RUN_ID = "operator-vast-1"
WAIT_S = 540.0


def vast_configs(target: Path, python: Path) -> Path:
    """The Vultr test's stage, less its volume section (``--provider vast`` picks Vast)."""
    sandbox_configs(target, python)
    path = target / "stages" / "operator.yaml"
    stage = yaml.safe_load(path.read_text())
    stage.pop("volume", None)
    path.write_text(yaml.safe_dump(stage))
    return target


def wait_gone(emulator: VastEmulator, machines: ContainerMachines, timeout: float) -> bool:
    """Until the emulator lists no instance and no container is alive."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if vast_left(emulator, machines) == {"instances": 0, "machines": 0}:
            return True
        time.sleep(1.0)
    return False


@pytest.mark.timeout(600)
def test_launcher_run_trains_ups_s_operator_on_vast_in_the_sandbox(ups_snapshot, tiny_splits,
                                                                  monkeypatch, capsys):
    need(UPS_PYTHON.is_file(), "make ups-env")
    # Run as root, the container trains as nobody, who must reach the container's directory
    # (pytest's own temp folder is closed to others) and UPS's environment.
    root = Path(tempfile.mkdtemp(prefix="launcher-ups-vast-"))
    root.chmod(0o755)
    try:
        _launch_and_check(root, ups_snapshot, tiny_splits, monkeypatch, capsys)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _launch_and_check(root: Path, ups_snapshot: Path, tiny_splits: Path, monkeypatch,
                      capsys) -> None:
    key_id, key, vast = f"ups{secrets.token_hex(6)}", secrets.token_urlsafe(30), \
        secrets.token_urlsafe(32)
    s3 = start_s3_server(root / "s3", [Identity("ups", key_id, Secret(key))])
    (root / "machines").mkdir(mode=0o755)
    emulator, machines = start_vast(root / "machines", vast, VastTiming.instant(), 0.0,
                                    lambda line: None)
    assert machines is not None
    try:
        s3.make_bucket(BUCKET)
        for object_key, name in UPS_KEYS.items():
            s3.put(BUCKET, object_key, tiny_splits / name)
        code = root / "code"
        git_checkout(ups_snapshot, code)
        (root / "empty.env").touch()
        for name, value in {"VAST_API_KEY": vast, "VAST_API_URL": emulator.url,
                            "B2_KEY_ID": key_id, "B2_APP_KEY": key, "B2_BUCKET": BUCKET,
                            "B2_S3_ENDPOINT": s3.endpoint, "B2_S3_REGION": "us-east-1",
                            "LAUNCHER_ENV_FILE": str(root / "empty.env"),
                            "LAUNCHER_LOCK_DIR": str(root / "locks"),
                            "LAUNCHER_CONFIG_DIR": str(vast_configs(
                                root / "configs", reachable_python(root)))
                            }.items():
            monkeypatch.setenv(name, value)
        for name in ("WANDB_API_KEY", "B2_APPLICATION_KEY_ID", "B2_APPLICATION_KEY",
                     "VULTR_KEY", "VULTR_API_URL"):
            monkeypatch.delenv(name, raising=False)
        assert cli.main(["run", "--provider", "vast", "--stage", "operator", "--yes",
                         "--run-id", RUN_ID, "--code-dir", str(code)]) == 0
        gone = wait_gone(emulator, machines, WAIT_S)
        (iid,) = machines.ids()
        _check_outputs(s3, root / "machines" / iid, gone)
        assert cli.main(["status", "--provider", "vast", RUN_ID]) == 0
        assert cli.main(["gc", "--provider", "vast", "--yes"]) == 0
        assert vast_left(emulator, machines) == {"instances": 0, "machines": 0}
        out = capsys.readouterr()
        train_log = read(s3, f"runs/{RUN_ID}/logs/train.log")
        for secret in (key, vast):
            assert secret not in out.out + out.err + train_log
    finally:
        stop_all(machines.close, emulator.stop, s3.stop)


def _check_outputs(s3, container: Path, gone: bool) -> None:
    listing = s3.listing(BUCKET, f"runs/{RUN_ID}/")
    status = json.loads(read(s3, f"runs/{RUN_ID}/status.json"))
    train_log = read(s3, f"runs/{RUN_ID}/logs/train.log")
    runner_log = container / "var/log/launcher/runner.log"
    assert status["state"] == "succeeded", (status.get("reason"), train_log[-6000:],
                                            runner_log.read_text()[-3000:]
                                            if runner_log.is_file() else "no runner.log")
    assert gone, "the instance or its container is still there"
    prefix = f"runs/{RUN_ID}/"
    for wanted in ("checkpoints/operator.pt", "checkpoints/metadata.json",
                   f"reports/fast_to_sota/{RUN_ID}/configs/train_resolved.yaml",
                   f"reports/fast_to_sota/{RUN_ID}/summary.json",
                   "reports/training_log.jsonl", "manifest.json"):
        assert prefix + wanted in listing, sorted(listing)
    assert "Training Operator" in train_log and "Skipping training" not in train_log
    resolved = yaml.safe_load(read(
        s3, f"{prefix}reports/fast_to_sota/{RUN_ID}/configs/train_resolved.yaml"))
    # The cache is volume.mount_point on the container's disk, under its directory here.
    assert resolved["data"]["root"] == str(container.resolve() / "mnt/cache/data/pdebench")
    # No key: UPS's W&B login fails at once and it trains on; the status says W&B is off.
    assert "Failed to initialize WandB" in train_log
    assert resolved["logging"]["wandb"]["group"] == RUN_ID
    assert "environment=vast" in resolved["logging"]["wandb"]["tags"]
    assert any("W&B is off" in note for note in status["notes"])
    # git is on this machine: the env phase installs nothing with apt-get.
    assert not [note for note in status["notes"] if "apt-get" in note], status["notes"]
    assert prefix + "logs/apt.log" not in listing
