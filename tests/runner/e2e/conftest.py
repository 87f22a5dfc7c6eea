"""The bed for the end-to-end run: everything the real runner touches, real or faked only at
the machine's edge, and a way to run ``runner.pyz`` on it as the instance would.

Real: the runner zipapp (built by ``launcher.render.build_runner_zipapp``, run by the image's
``/usr/bin/python3`` in a subprocess), SeaweedFS (``tests/runner/conftest.py``), the Vultr
emulator, a metadata server (``lifecycle/conftest.py``), ``useradd`` and an unprivileged
trainer, s5cmd, dd. Faked at the edge: the block device (a plain file under a fake
``/dev/disk/by-id`` and ``/sys/block``, read through ``LAUNCHER_RUNNER_TEST_HOST_ROOT``),
``blkid``/``mkfs``/``mount`` and the matmul's ``python3`` (``machine/fakes``), ``iptables``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.keys import FAKE_B2_APP_KEY, FAKE_B2_KEY_ID, FAKE_VULTR_KEY, FAKE_WANDB_KEY
from support.need import need
from support.sshkeys import ed25519_public

from launcher.render import build_runner_zipapp
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
)
from launcher.runner.supervisor import TEST_HOST_ENV
from runner.conftest import READER_ID, READER_SECRET, S3Server, listing, put
from runner.lifecycle import conftest as lifecycle
from runner.lifecycle.conftest import PLAN, REGION, SNAPSHOT_ID
from runner.machine import conftest as machine
from runner.machine.conftest import FAKES, SYSTEM_PATH

# The other folders' fixtures this one needs, registered here too (function-scoped, so
# nothing is shared): the metadata service, and a trainer name removed after the test.
metadata = lifecycle.metadata
fresh_user_name = machine.fresh_user_name

SYSTEM_PYTHON = "/usr/bin/python3"  # the image's interpreter, as the systemd unit runs it
RUN_ID = "e2e-run-1"
DATA_PREFIX = "datasets/v1"
DATASET = {"a.txt": b"alpha\n", "b.bin": bytes(range(256)) * 16,
           "nested/deep/c.txt": b"gamma\n" * 100}
DECOY = ("datasets/v10/decoy.txt", b"not this dataset\n")  # a sibling prefix: never synced
RUN_TIMEOUT_S = 45.0
GIT_SHA = "0123456789abcdef0123456789abcdef01234567"

TRAIN_PY = r'''"""A tiny training stage: reads the data, writes a checkpoint and a report."""
import argparse, json, os, pathlib, sys

from lib.steps import step

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, required=True)
parser.add_argument("--exit", type=int, default=0)
args = parser.parse_args()

for name in ("VULTR_KEY", "B2_KEY_ID", "B2_APP_KEY", "AWS_ACCESS_KEY_ID",
             "AWS_SECRET_ACCESS_KEY"):
    assert name not in os.environ, f"{name} reached the trainer"
assert os.getuid() != 0 and os.geteuid() != 0, "training runs as root"
try:
    open(os.environ["E2E_SECRETS_FILE"]).close()
    print("secrets file: READABLE")
except PermissionError:
    print("secrets file: unreadable")
print("user: " + os.environ["USER"] + " uid " + str(os.getuid()))
print("WANDB_TAGS=" + os.environ.get("WANDB_TAGS", ""))
print("wandb key set: " + str(bool(os.environ.get("WANDB_API_KEY"))))

data = pathlib.Path(os.environ["LAUNCHER_DATA_DIR"])
files = sorted(p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file())
total = sum((data / f).stat().st_size for f in files)
print("data files: " + ",".join(files))
loss = 1.0
for n in range(args.steps):
    loss = step(loss)
    print(f"step {n + 1} loss {loss:.4f}", flush=True)

ckpt = pathlib.Path(os.environ["LAUNCHER_CHECKPOINT_DIR"]) / f"step-{args.steps}" / "model.bin"
ckpt.parent.mkdir(parents=True, exist_ok=True)
ckpt.write_bytes(b"weights " * 64 + str(args.steps).encode())
report = pathlib.Path(os.environ["LAUNCHER_REPORT_DIR"]) / "report.json"
report.write_text(json.dumps({"steps": args.steps, "loss": loss, "data_files": len(files),
                              "data_bytes": total, "run_id": os.environ["LAUNCHER_RUN_ID"]}))
print("done, exiting with", args.exit)
sys.exit(args.exit)
'''

STEPS_PY = '''def step(loss):
    return loss * 0.5
'''

IPTABLES = '''#!/bin/sh
# Fake iptables: records its arguments; "-C" (is the rule there?) answers no.
echo "$*" >> "$FAKE_STATE/iptables.log"
[ "$2" = "-C" ] && exit 1
exit 0
'''


def code_tarball() -> bytes:
    """A .tar.gz of the training project, as the launcher packs a checkout."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in (("train.py", TRAIN_PY), ("lib/__init__.py", ""),
                           ("lib/steps.py", STEPS_PY)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="session")
def runner_pyz() -> bytes:
    """The very zipapp the cloud-init document carries."""
    need(os.access(SYSTEM_PYTHON, os.X_OK),
         f"the runner runs with the image's {SYSTEM_PYTHON}, absent here")
    return build_runner_zipapp()


@dataclass
class Bed:
    """One prepared run: its files, the services it talks to, and what it used as secrets."""

    root: Path
    host: Path
    spec: RunSpec
    spec_path: Path
    pyz: Path
    env: dict[str, str]
    server: S3Server
    bucket: str
    emulator: object
    instance_id: str
    block_id: str
    secrets: list[str]
    setup_events: int
    result: subprocess.CompletedProcess | None = None

    # -- running ----------------------------------------------------------------------------

    def run(self) -> subprocess.CompletedProcess:
        """``/usr/bin/python3 runner.pyz supervise --spec run.json``, bounded."""
        try:
            self.result = subprocess.run(
                [SYSTEM_PYTHON, str(self.pyz), "supervise", "--spec", str(self.spec_path)],
                env=self.env, cwd=self.root, stdin=subprocess.DEVNULL, capture_output=True,
                text=True, timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            tail = self.scrub((exc.stderr or b"")[-3000:].decode(errors="replace")
                              if isinstance(exc.stderr, bytes) else str(exc.stderr)[-3000:])
            pytest.fail(f"the runner did not finish within {RUN_TIMEOUT_S}s:\n{tail}")
        return self.result

    def scrub(self, text: str) -> str:
        """Diagnostics for a failure message, with every secret value masked."""
        for value in self.secrets:
            text = text.replace(value, "***")
        return text

    def diagnostics(self) -> str:
        result = self.result
        if result is None:
            return "(not run)"
        return self.scrub(f"exit {result.returncode}\n--- stderr (tail) ---\n"
                          f"{result.stderr[-4000:]}\n--- stdout ---\n{result.stdout[-1000:]}")

    # -- looking at what happened -----------------------------------------------------------

    def status(self) -> dict:
        return json.loads((Path(self.spec.paths.state_dir) / "status.json").read_text())

    def log(self, name: str) -> str:
        return (Path(self.spec.paths.log_dir) / name).read_text()

    def remote(self) -> dict[str, int]:
        """``{key: size}`` of everything under ``runs/<run_id>/``."""
        return listing(self.server, self.bucket, f"{self.spec.run_prefix}/")

    def download(self) -> Path:
        """Everything under ``runs/<run_id>/``, downloaded (as the admin identity)."""
        dest = self.root / "downloaded"
        dest.mkdir(exist_ok=True)
        self.server.s5("cp", f"s3://{self.bucket}/{self.spec.run_prefix}/*", f"{dest}/")
        return dest

    def new_mutations(self) -> list[tuple[str, str, int | None]]:
        """(method, route, status) of the mutating calls made after the bed was set up."""
        return [(e.method, e.route, e.status) for e in self.emulator.mutations()
                if e.seq > self.setup_events]

    def leaks(self, *extra_texts: str) -> list[str]:
        """Where a secret value appears: any file under the bed (the secrets file aside),
        the given downloads and texts. Names only, never the value."""
        found = []
        paths = [p for p in self.root.rglob("*") if p.is_file() and not p.is_symlink()
                 and p != Path(self.spec.paths.secrets_file)]
        for path in paths:
            data = path.read_bytes()
            if any(value.encode() in data for value in self.secrets):
                found.append(str(path.relative_to(self.root)))
        for number, text in enumerate(extra_texts):
            if any(value in text for value in self.secrets):
                found.append(f"text #{number}")
        return found


@pytest.fixture
def make_bed(runner_pyz: bytes, s3_server: S3Server, bucket: str, client, emulator, metadata,
             fresh_user_name: str) -> Iterator[Callable[..., Bed]]:
    """``make(args=(), read_only=False) -> Bed``: a fresh world for one runner run.

    ``args`` are appended to the training command; ``read_only`` gives the runner the bucket
    identity that may only read and list (so code and data arrive, and the upload cannot)."""
    roots: list[Path] = []

    def make(args: tuple[str, ...] = (), *, read_only: bool = False) -> Bed:
        # 0755 all the way down: the trainer must reach the code and the volume (tmp_path
        # is 0700).
        root = Path(tempfile.mkdtemp(prefix="launcher-e2e-"))
        roots.append(root)
        root.chmod(0o755)

        # The Vultr side: an instance tagged with the run, its volume attached.
        instance, block = lifecycle.launch_attached(client, RUN_ID)
        assert block.attached_to == instance.id

        host = _fake_host(root / "host", block.mount_id, instance.id)
        fake_state = root / "fake-state"
        fake_state.mkdir()
        tools = root / "bin"
        tools.mkdir()
        (tools / "iptables").write_text(IPTABLES)
        (tools / "iptables").chmod(0o755)

        # The bucket: the code tarball and the dataset.
        tarball = code_tarball()
        sha = hashlib.sha256(tarball).hexdigest()
        tarball_key = f"code/{RUN_ID}-{sha[:12]}.tar.gz"
        put(s3_server, bucket, tarball_key, tarball, root)
        for rel, data in DATASET.items():
            put(s3_server, bucket, f"{DATA_PREFIX}/{rel}", data, root)
        put(s3_server, bucket, DECOY[0], DECOY[1], root)

        etc = root / "etc"
        etc.mkdir()
        secrets_file = etc / "secrets.env"
        key_id, app_key = (READER_ID, READER_SECRET) if read_only else (FAKE_B2_KEY_ID,
                                                                        FAKE_B2_APP_KEY)
        run_secrets = RunSecrets({"VULTR_KEY": FAKE_VULTR_KEY, "B2_KEY_ID": key_id,
                                  "B2_APP_KEY": app_key, "WANDB_API_KEY": FAKE_WANDB_KEY})
        secrets_file.write_text(run_secrets.to_env_file())
        secrets_file.chmod(0o600)

        spec = RunSpec(
            run_id=RUN_ID, stage="diffusion",
            command=(SYSTEM_PYTHON, "train.py", "--steps", "3", *args),
            code=CodeSource(tarball_key=tarball_key, sha256=sha),
            storage=Storage(s3_server.endpoint, bucket, DATA_PREFIX, region="us-east-1"),
            volume=VolumeSpec(block_id=block.id, mount_id=block.mount_id,
                              mount_point=str(root / "mnt"), device_wait_s=10),
            deadline_epoch=time.time() + 3600,
            placement=Placement(region=REGION, plan=PLAN, gpu_type="NVIDIA_A100", gpu_count=1,
                                snapshot_id=SNAPSHOT_ID, git_sha=GIT_SHA),
            health=HealthSpec(cpu_only=True, min_gpus=0, min_vram_gb=0, min_disk_mb_s=1.0),
            wandb=WandbSpec(project="e2e", mode="offline", tags=("e2e",)),
            paths=Paths(state_dir=str(root / "state"), log_dir=str(root / "log"),
                        code_dir=str(root / "code"), secrets_file=str(secrets_file),
                        trainer_user=fresh_user_name),
            env=(("E2E_SECRETS_FILE", str(secrets_file)),),
            api_url=emulator.url, metadata_url=metadata(instance.id))
        spec_path = etc / "run.json"
        spec_path.write_text(spec.to_json())
        pyz = root / "runner.pyz"
        pyz.write_bytes(runner_pyz)

        env = {"PATH": os.pathsep.join((str(tools), str(FAKES), SYSTEM_PATH)),
               "LANG": "C.UTF-8", "FAKE_PYTHON": sys.executable, "FAKE_STATE": str(fake_state),
               "LAUNCHER_S5CMD": s3_server.s5cmd, TEST_HOST_ENV: str(host)}
        return Bed(root, host, spec, spec_path, pyz, env, s3_server, bucket, emulator,
                   instance.id, block.id, run_secrets.all_values(),
                   setup_events=len(emulator.events))

    yield make
    for root in roots:
        shutil.rmtree(root, ignore_errors=True)


def _fake_host(host: Path, mount_id: str, instance_id: str) -> Path:
    """The machine's edge: ``/dev/vdb`` (a plain file) with its by-id link and sysfs serial,
    the mounts table, fstab, an SSH host key, and cloud-init's cache holding copies of the
    user data."""
    (host / "dev/disk/by-id").mkdir(parents=True)
    (host / "dev/vdb").write_bytes(b"")
    (host / "dev/disk/by-id" / f"virtio-{mount_id}").symlink_to("../../vdb")
    (host / "sys/block/vdb").mkdir(parents=True)
    (host / "sys/block/vdb/serial").write_text(mount_id[:20] + "\n")
    (host / "proc").mkdir()
    (host / "proc/mounts").write_text("proc /proc proc rw 0 0\n/dev/vda1 / ext4 rw 0 0\n")
    (host / "etc").mkdir()
    (host / "etc/fstab").write_text("# /etc/fstab\nLABEL=root / ext4 defaults 0 1\n")
    (host / "etc/ssh").mkdir()
    (host / "etc/ssh/ssh_host_ed25519_key.pub").write_text(ed25519_public(instance_id) + "\n")
    cloud = host / "var/lib/cloud"
    current = cloud / "instances" / instance_id
    current.mkdir(parents=True)
    user_data = f"#cloud-config\n# VULTR_KEY={FAKE_VULTR_KEY}\n"
    for name in ("user-data.txt", "user-data.txt.i", "cloud-config.txt"):
        (current / name).write_text(user_data)
    (current / "vendor-data.txt").write_text("#cloud-config\n# Vultr's, left alone\n")
    (cloud / "instance").symlink_to(f"instances/{instance_id}")  # as cloud-init links it
    return host
