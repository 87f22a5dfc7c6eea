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
import time
from pathlib import Path

import pytest
import yaml

from launcher import cli
from launcher.demo.bed import git_checkout, stop_all
from launcher.demo.vast import ContainerMachines, start_vast, vast_left
from launcher.emulator.vast import VastEmulator, VastTiming

from .test_launch_in_sandbox import (
    BUCKET,
    check_ups_outputs,
    open_root,
    reachable_python,
    read,
    sandbox_configs,
    set_account,
    ups_bucket,
)

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
    with open_root("launcher-ups-vast-") as root:
        _launch_and_check(root, ups_snapshot, tiny_splits, monkeypatch, capsys)


def _launch_and_check(root: Path, ups_snapshot: Path, tiny_splits: Path, monkeypatch,
                      capsys) -> None:
    vast = secrets.token_urlsafe(32)
    s3, key_id, key = ups_bucket(root, tiny_splits)
    (root / "machines").mkdir(mode=0o755)
    emulator, machines = start_vast(root / "machines", vast, VastTiming.instant(), 0.0,
                                    lambda line: None)
    assert machines is not None
    try:
        code = root / "code"
        git_checkout(ups_snapshot, code)
        set_account(monkeypatch, root, s3, key_id, key,
                    vast_configs(root / "configs", reachable_python(root)),
                    {"VAST_API_KEY": vast, "VAST_API_URL": emulator.url})
        assert cli.main(["run", "--provider", "vast", "--stage", "operator", "--yes",
                         "--run-id", RUN_ID, "--code-dir", str(code)]) == 0
        gone = wait_gone(emulator, machines, WAIT_S)
        (iid,) = machines.ids()
        _check_outputs(s3, root / "machines" / iid)
        assert gone, "the instance or its container is still there"
        assert cli.main(["status", "--provider", "vast", RUN_ID]) == 0
        assert cli.main(["gc", "--provider", "vast", "--yes"]) == 0
        assert vast_left(emulator, machines) == {"instances": 0, "machines": 0}
        out = capsys.readouterr()
        train_log = read(s3, f"runs/{RUN_ID}/logs/train.log")
        for secret in (key, vast):
            assert secret not in out.out + out.err + train_log
    finally:
        stop_all(machines.close, emulator.stop, s3.stop)


def _check_outputs(s3, container: Path) -> None:
    runner_log = container / "var/log/launcher/runner.log"
    resolved = check_ups_outputs(s3, RUN_ID, runner_log.read_text()[-3000:]
                                 if runner_log.is_file() else "no runner.log")
    # The cache is volume.mount_point on the container's disk, under its directory here.
    assert resolved["data"]["root"] == str(container.resolve() / "mnt/cache/data/pdebench")
    assert "environment=vast" in resolved["logging"]["wandb"]["tags"]
    # git is on this machine: the env phase installs nothing with apt-get.
    status = json.loads(read(s3, f"runs/{RUN_ID}/status.json"))
    assert not [note for note in status["notes"] if "apt-get" in note], status["notes"]
    assert f"runs/{RUN_ID}/logs/apt.log" not in s3.listing(BUCKET, f"runs/{RUN_ID}/")
