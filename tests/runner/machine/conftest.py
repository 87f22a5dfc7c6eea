"""Fixtures for the machine phases (volume, health, train): a run spec pointed into a temp
dir, a Context whose tools find the fakes in ``fakes/`` first on PATH (the sandbox's fake
tools plus test-only failure knobs), fake device trees, and — when the suite runs as root — a
real throwaway unprivileged user."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.clock import FakeClock
from support.keys import FAKE_B2_APP_KEY, FAKE_B2_KEY_ID, FAKE_VULTR_KEY, FAKE_WANDB_KEY
from support.need import need

from launcher.runner.context import Context
from launcher.runner.spec import (
    CodeSource,
    HealthSpec,
    Paths,
    Placement,
    RunSecrets,
    RunSpec,
    Storage,
    VolumeSpec,
    WandbSpec,
    scrub,
)
from launcher.runner.status import Reporter
from launcher.runner.supervisor import TEST_HOST_ENV
from launcher.runner.volume import HostPaths
from launcher.sandbox.machine import TOOLS_DIR

FAKES = Path(__file__).parent / "fakes"
MOUNT_ID = "ewr-2a1b3c4d5e6f7a8b9c"  # 22 characters: a virtio serial keeps only 20
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
IS_ROOT = os.geteuid() == 0


def fake_secrets() -> RunSecrets:
    return RunSecrets({"VULTR_KEY": FAKE_VULTR_KEY, "B2_KEY_ID": FAKE_B2_KEY_ID,
                       "B2_APP_KEY": FAKE_B2_APP_KEY, "WANDB_API_KEY": FAKE_WANDB_KEY})


def make_spec(root: Path, **changes) -> RunSpec:
    """A spec with every path under ``root``; ``changes`` may hold whole fields or, for the
    nested parts (volume, health, wandb, placement, paths), dicts of field overrides."""
    parts = {
        "volume": VolumeSpec(block_id="blk-1", mount_id=MOUNT_ID,
                             mount_point=str(root / "mnt"), device_wait_s=5),
        "health": HealthSpec(),
        "wandb": WandbSpec(project="proj", entity="team", tags=("baseline",)),
        "placement": Placement(region="ewr", plan="vcg-a100-1c-6g-4vram", gpu_type="NVIDIA_A100",
                               gpu_count=1, snapshot_id="snap-1",
                               snapshot_description="launcher-gpu-ubuntu-550-12.4-20240601",
                               git_sha="0123456789abcdef0123456789abcdef01234567"),
        "paths": Paths(state_dir=str(root / "state"), log_dir=str(root / "log"),
                       code_dir=str(root / "code"), secrets_file=str(root / "secrets.env")),
    }
    for name, value in list(changes.items()):
        if name in parts and isinstance(value, dict):
            parts[name] = dataclasses.replace(parts[name], **changes.pop(name))
    fields = {"run_id": "run-test-1", "stage": "diffusion", "command": ("true",),
              "code": CodeSource(tarball_key="code/x.tar.gz", sha256="0" * 64),
              "storage": Storage(endpoint_url="http://127.0.0.1:9", bucket="b",
                                 data_prefix="data"),
              "deadline_epoch": time.time() + 3600, **parts, **changes}
    return RunSpec(**fields)


def make_context(spec: RunSpec, env: dict[str, str], run_secrets: RunSecrets | None = None,
                 **options) -> Context:
    run_secrets = fake_secrets() if run_secrets is None else run_secrets
    reporter = Reporter(spec.run_id, spec.paths.state_dir, spec.paths.log_dir,
                        scrub=lambda text: scrub(text, run_secrets))
    return Context(spec=spec, secrets=run_secrets, reporter=reporter, base_env=env, **options)


class Fakes:
    """The fake tools' environment and their call log."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.env = {"PATH": f"{FAKES}{os.pathsep}{SYSTEM_PATH}", "LANG": "C.UTF-8",
                    "FAKE_PYTHON": sys.executable, "FAKE_STATE": str(state)}

    def calls(self, tool: str | None = None) -> list[list[str]]:
        log = self.state / "calls.jsonl"
        rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        return [row["argv"] for row in rows if tool is None or row["tool"] == tool]

    def env_names(self, tool: str) -> list[list[str]]:
        """The names (never the values) of each call's environment."""
        log = self.state / "calls.jsonl"
        rows = [json.loads(line) for line in log.read_text().splitlines()]
        return [row["env"] for row in rows if row["tool"] == tool]


@pytest.fixture
def fakes(tmp_path: Path) -> Fakes:
    state = tmp_path / "fake-state"
    state.mkdir()
    return Fakes(state)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1000.0)


@pytest.fixture
def host(tmp_path: Path, fakes: Fakes) -> HostPaths:
    """Device, sysfs, mounts and fstab trees in a temp dir (plain files for devices)."""
    root = tmp_path / "host"
    paths = HostPaths(by_id=root / "dev/disk/by-id", sys_block=root / "sys/block",
                      dev=root / "dev", mounts=root / "proc/mounts", fstab=root / "etc/fstab",
                      block_only=False)
    for directory in (paths.by_id, paths.sys_block, paths.mounts.parent, paths.fstab.parent):
        directory.mkdir(parents=True)
    paths.mounts.write_text("proc /proc proc rw 0 0\n/dev/vda1 / ext4 rw 0 0\n")
    paths.fstab.write_text("# /etc/fstab\nLABEL=root / ext4 defaults 0 1\n")
    fakes.env[TEST_HOST_ENV] = str(root)  # where the fake blkid, mkfs and mount may act
    return paths


def attach(host: HostPaths, name: str = "vdc", serial: str | None = MOUNT_ID,
           link: str | None = None, size: int = 0, fs_type: str = "") -> Path:
    """A fake disk ``/dev/<name>`` with a sysfs serial and, if ``link``, a by-id link; blank,
    or formatted ``fs_type`` by the sandbox's fake mkfs."""
    device = host.dev / name
    device.write_bytes(b"")
    if size:
        os.truncate(device, size)
    if fs_type:
        subprocess.run([sys.executable, TOOLS_DIR / f"mkfs.{fs_type}", device], check=True,
                       capture_output=True, timeout=30, env={"PYTHONDONTWRITEBYTECODE": "1",
                                                             TEST_HOST_ENV: str(host.dev.parent)})
    if serial is not None:
        (host.sys_block / name).mkdir()
        (host.sys_block / name / "serial").write_text(serial + "\n")
    if link is not None:
        (host.by_id / f"virtio-{link}").symlink_to(device)
    return device


def _world_executable(path: str) -> bool:
    real = Path(os.path.realpath(path))
    return all(p.stat().st_mode & stat.S_IXOTH for p in (real, *real.parents))


@pytest.fixture(scope="session")
def child_python() -> str:
    """A python the trainer account can execute (root's pyenv is not reachable for it)."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        if os.path.exists(candidate) and (not IS_ROOT or _world_executable(candidate)):
            return candidate
    need(False, "no python executable by an unprivileged user")


def _userdel(name: str) -> None:
    """Remove the throwaway user; userdel refuses while it owns processes, so any a failed
    test left behind (all started by this suite) are killed by pid first."""
    listed = subprocess.run(["ps", "-o", "pid=", "-u", name], capture_output=True, text=True,
                            check=False, timeout=30)
    for pid in listed.stdout.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["userdel", "--remove", name], capture_output=True, check=False, timeout=60)


@pytest.fixture(scope="session")
def trainer_name() -> Iterator[str]:
    """As root: a real throwaway system user, removed afterwards. Otherwise: the current
    user (train.run then runs the command as itself)."""
    if not IS_ROOT:
        yield pwd.getpwuid(os.getuid()).pw_name
        return
    name = f"lt{secrets.token_hex(5)}"
    subprocess.run(["useradd", "--system", "--create-home", "--user-group", "--shell",
                    "/usr/sbin/nologin", name], check=True, capture_output=True, timeout=60)
    try:
        yield name
    finally:
        _userdel(name)


@pytest.fixture
def fresh_user_name() -> Iterator[str]:
    """A user name that does not exist yet; whatever creates it, it is removed afterwards."""
    need(IS_ROOT, "creating a user needs root")
    name = f"lt{secrets.token_hex(5)}"
    try:
        yield name
    finally:
        _userdel(name)


@pytest.fixture
def world() -> Iterator[Path]:
    """A 0755 temp tree the trainer account can traverse (pytest's tmp_path is 0700)."""
    root = Path(tempfile.mkdtemp(prefix="launcher-train-"))
    root.chmod(0o755)
    for name in ("code", "mnt", "log", "state"):
        (root / name).mkdir(mode=0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
