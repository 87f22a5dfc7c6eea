"""``launcher run --stage operator`` of the training repository, end to end in the sandbox.

The real command line launches against the emulator; the instance is a local process
running the real runner from the document (``launcher/sandbox/``): it mounts its "volume",
fetches the UPS checkout as the launcher packed it (``git archive``), syncs the data from
an S3 server laid out as UPS's bucket (the account is a UPS ``.env``'s names), runs UPS's
orchestrator on the CPU, uploads and deletes its volume and itself. The stage is the shipped
one with three changes a user could make: ``cpu_only`` (the sandbox has no GPU), the tiny
model through ``ups.overrides``, and no ``python_env`` install (no network here: UPS's
python is the prepared CPU environment, named by ``ups.python``).
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from launcher import cli
from launcher.demo.bed import git_checkout, stop_all
from launcher.emulator import Emulator, Timing
from launcher.sandbox import ProcessHypervisor
from launcher.sandbox.machine import traversable_by_others
from launcher.sandbox.s3server import Identity, start_s3_server
from launcher.secrets import Secret

from .conftest import UPS_PYTHON, need
from .test_stages_on_ups import CONFIGS, EPOCHS, TINY

BUCKET = "pdebench"
RUN_ID = "operator-sandbox-1"
UPS_KEYS = {"full/burgers1d/burgers1d_train_000.h5": "burgers1d_train_000.h5",
            "pdebench/burgers1d_full_v1/burgers1d_val.h5": "burgers1d_val.h5",
            "pdebench/burgers1d_full_v1/burgers1d_test.h5": "burgers1d_test.h5"}


def read(s3, key: str) -> str:
    return s3.s5("cat", f"s3://{BUCKET}/{key}").stdout


def reachable_python(root: Path) -> Path:
    """UPS's environment where the sandbox's unprivileged trainer can run it: in place, or
    a copy under ``root`` when the checkout is closed to others (a venv runs from a copy)."""
    if traversable_by_others(UPS_PYTHON.parent.parent) is None:
        return UPS_PYTHON
    copy = root / "venv-ups"
    shutil.copytree(UPS_PYTHON.parent.parent, copy, symlinks=True)
    return copy / "bin" / "python"


def sandbox_configs(target: Path, python: Path) -> Path:
    shutil.copytree(CONFIGS, target)
    path = target / "stages" / "operator.yaml"
    stage = yaml.safe_load(path.read_text())
    stage.update(cpu_only=True, max_hours=1, volume={"size_gb": 10},
                 python_env={"install": []})
    stage["ups"].update(python=str(python), overrides={**TINY, **EPOCHS["operator"]})
    path.write_text(yaml.safe_dump(stage))
    return target


@contextmanager
def open_root(prefix: str) -> Iterator[Path]:
    """A temp folder others may enter: as in the demo, run as root, the sandbox trains as
    nobody, who must reach the machines (pytest's own temp folder is closed to others)."""
    need(UPS_PYTHON.is_file(), "make ups-env")
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_launcher_run_trains_ups_s_operator_in_the_sandbox(ups_snapshot, tiny_splits,
                                                          monkeypatch, capsys):
    with open_root("launcher-ups-") as root:
        _launch_and_check(root, ups_snapshot, tiny_splits, monkeypatch, capsys)


def ups_bucket(root: Path, tiny_splits: Path):
    """A local S3 server whose bucket is laid out as UPS's; (server, key id, key)."""
    key_id, key = f"ups{secrets.token_hex(6)}", secrets.token_urlsafe(30)
    s3 = start_s3_server(root / "s3", [Identity("ups", key_id, Secret(key))])
    s3.make_bucket(BUCKET)
    for object_key, name in UPS_KEYS.items():
        s3.put(BUCKET, object_key, tiny_splits / name)
    return s3, key_id, key


def set_account(monkeypatch, root: Path, s3, key_id: str, key: str, configs: Path,
                cloud: dict[str, str]) -> None:
    """The launcher's environment: a UPS .env's B2 names, the cloud's own (``cloud``), this
    test's configs; no W&B key, no other cloud's variables."""
    (root / "empty.env").touch()
    for name, value in {**cloud, "B2_KEY_ID": key_id, "B2_APP_KEY": key, "B2_BUCKET": BUCKET,
                        "B2_S3_ENDPOINT": s3.endpoint, "B2_S3_REGION": "us-east-1",
                        "LAUNCHER_ENV_FILE": str(root / "empty.env"),
                        "LAUNCHER_LOCK_DIR": str(root / "locks"),
                        "LAUNCHER_CONFIG_DIR": str(configs)}.items():
        monkeypatch.setenv(name, value)
    for name in ("WANDB_API_KEY", "B2_APPLICATION_KEY_ID", "B2_APPLICATION_KEY", "VULTR_KEY",
                 "VULTR_API_URL", "VAST_API_KEY", "VAST_API_URL"):
        if name not in cloud:
            monkeypatch.delenv(name, raising=False)


def check_ups_outputs(s3, run_id: str, why: object = "") -> dict:
    """What a UPS operator run leaves in the bucket, checked; the resolved train config.
    ``why`` is shown when the run did not succeed."""
    prefix = f"runs/{run_id}/"
    listing = s3.listing(BUCKET, prefix)
    status = json.loads(read(s3, f"{prefix}status.json"))
    train_log = read(s3, f"{prefix}logs/train.log")
    assert status["state"] == "succeeded", (status.get("reason"), why, train_log[-6000:])
    for wanted in ("checkpoints/operator.pt", "checkpoints/metadata.json",
                   f"reports/fast_to_sota/{run_id}/configs/train_resolved.yaml",
                   f"reports/fast_to_sota/{run_id}/summary.json",
                   "reports/training_log.jsonl", "manifest.json"):
        assert prefix + wanted in listing, sorted(listing)
    assert "Training Operator" in train_log and "Skipping training" not in train_log
    resolved = yaml.safe_load(read(
        s3, f"{prefix}reports/fast_to_sota/{run_id}/configs/train_resolved.yaml"))
    # No key: UPS's W&B login fails at once and it trains on; the status says W&B is off.
    assert "Failed to initialize WandB" in train_log
    assert resolved["logging"]["wandb"]["group"] == run_id
    assert any("W&B is off" in note for note in status["notes"])
    return resolved


def _launch_and_check(root: Path, ups_snapshot: Path, tiny_splits: Path, monkeypatch,
                      capsys) -> None:
    vultr = secrets.token_urlsafe(32)
    s3, key_id, key = ups_bucket(root, tiny_splits)
    machines = ProcessHypervisor(root / "machines")
    emulator = Emulator(api_key=vultr, timing=Timing.instant(), hypervisor=machines)
    try:
        emulator.start()
        code = root / "code"
        git_checkout(ups_snapshot, code)
        set_account(monkeypatch, root, s3, key_id, key,
                    sandbox_configs(root / "configs", reachable_python(root)),
                    {"VULTR_KEY": vultr, "VULTR_API_URL": emulator.url})
        assert cli.main(["run", "--stage", "operator", "--yes", "--run-id", RUN_ID,
                         "--code-dir", str(code)]) == 0
        (machine,) = machines.machines()
        done = machines.wait(machine.instance_id, timeout=600)
        resolved = check_ups_outputs(s3, RUN_ID, done)
        assert resolved["data"]["root"].endswith("/mnt/cache/data/pdebench")
        assert not emulator.state.instances and not emulator.state.blocks
        out = capsys.readouterr()
        # The launch said so before it started, as the runner did after (UPS has no offline).
        assert "W&B is off for this run (UPS cannot log offline)" in out.out + out.err
        train_log = read(s3, f"runs/{RUN_ID}/logs/train.log")
        for secret in (key, vultr):
            assert secret not in out.out + out.err + train_log
    finally:
        stop_all(machines.close, emulator.stop, s3.stop)
