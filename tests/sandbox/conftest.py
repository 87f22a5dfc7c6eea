"""The sandbox's bed: the Vultr emulator with a :class:`ProcessHypervisor`, SeaweedFS as the
bucket (``tests/runner/conftest.py``), and a CPU-only run rendered by the real renderer and
launched through the emulator's API, as ``launcher run`` would.

The sandbox root is a 0755 temp dir (pytest's ``tmp_path`` is 0700): when the suite runs as
root, the trainer is ``nobody``, which must reach the code under it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import client_for
from runner.conftest import S3Server, bucket, put, s3_server  # noqa: F401 - fixtures
from runner.lifecycle.conftest import PLAN, REGION, SNAPSHOT_ID
from support.keys import FAKE_B2_APP_KEY, FAKE_B2_KEY_ID, FAKE_VULTR_KEY, FAKE_WANDB_KEY

from launcher.render import BootInputs, RenderedDocument, build_runner_zipapp, render
from launcher.runner.spec import (
    CodeSource,
    HealthSpec,
    RunSecrets,
    RunSpec,
    Storage,
    VolumeSpec,
    WandbSpec,
)
from launcher.sandbox import ProcessHypervisor
from launcher.vultr import BlockSpec, InstanceSpec
from sandbox.containerbed import code_tarball, wait_until

RUN_ID = "sbx-run-1"
DATA_PREFIX = "datasets/v1"
DATASET = {"a.txt": b"alpha\n", "nested/b.bin": bytes(range(256)) * 8}
SECRETS = RunSecrets({"VULTR_KEY": FAKE_VULTR_KEY, "B2_KEY_ID": FAKE_B2_KEY_ID,
                      "B2_APP_KEY": FAKE_B2_APP_KEY, "WANDB_API_KEY": FAKE_WANDB_KEY})
SECRET_VALUES = SECRETS.all_values()

TRAIN_PY = r'''"""A tiny stage: reads the data, writes a checkpoint and a report (or sleeps)."""
import argparse, json, os, pathlib, sys, time

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=3)
parser.add_argument("--sleep", type=float, default=0.0)
args = parser.parse_args()
print(f"user {os.environ['USER']} uid {os.getuid()} python {sys.executable}", flush=True)
if args.sleep:
    print("sleeping", flush=True)
    time.sleep(args.sleep)
data = pathlib.Path(os.environ["LAUNCHER_DATA_DIR"])
files = sorted(p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file())
ckpt = pathlib.Path(os.environ["LAUNCHER_CHECKPOINT_DIR"]) / "step-3" / "model.bin"
ckpt.parent.mkdir(parents=True, exist_ok=True)
ckpt.write_bytes(b"weights")
report = pathlib.Path(os.environ["LAUNCHER_REPORT_DIR"]) / "report.json"
report.write_text(json.dumps({"steps": args.steps, "files": files}))
print("done", flush=True)
'''


@pytest.fixture(scope="session")
def runner_pyz() -> bytes:
    return build_runner_zipapp()


@dataclass
class Launched:
    instance_id: str
    block_id: str
    spec: RunSpec


@dataclass
class Bed:
    """The emulator (with the hypervisor), a client, the bucket, and how to launch a run."""

    hypervisor: ProcessHypervisor
    emulator: object
    client: object
    server: S3Server
    bucket: str
    tarball_key: str
    sha256: str
    runner: bytes
    tmp: Path
    log: list[str] = field(default_factory=list)

    def spec(self, block, **changes) -> RunSpec:
        """A CPU-only run spec with the document's default paths (/var/lib/launcher …)."""
        fields = dict(
            run_id=RUN_ID, stage="demo", command=("python3", "train.py", "--steps", "3"),
            code=CodeSource(tarball_key=self.tarball_key, sha256=self.sha256),
            storage=Storage(self.server.endpoint, self.bucket, DATA_PREFIX, region="us-east-1"),
            volume=VolumeSpec(block_id=block.id, mount_id=block.mount_id, device_wait_s=30),
            deadline_epoch=time.time() + 3600,
            health=HealthSpec(cpu_only=True, min_gpus=0, min_vram_gb=0, min_disk_mb_s=1.0),
            wandb=WandbSpec(project="sandbox", mode="offline"),
            api_url=self.emulator.url, heartbeat_s=5)
        fields.update(changes)
        return RunSpec(**fields)

    def launch(self, *, attach: bool = True, user_data: str | None = None,
               tamper: bool = False, **changes) -> Launched:
        """Create a volume and an instance carrying the rendered document, then attach."""
        block = self.client.create_block(BlockSpec(REGION, 50, f"{RUN_ID}-cache"))
        spec = self.spec(block, **changes)
        text = user_data if user_data is not None else self.render(spec, tamper).text
        instance = self.client.create_instance(InstanceSpec(
            REGION, PLAN, RUN_ID, snapshot_id=SNAPSHOT_ID, tags=("launcher", f"run:{RUN_ID}"),
            user_data=text))
        self.client.wait_instance_ready(instance.id)
        if attach:
            self.client.attach_block(block.id, instance.id, live=True)
        return Launched(instance.id, block.id, spec)

    def render(self, spec: RunSpec, tamper: bool = False) -> RenderedDocument:
        """The document, with what its bootstrap fetches put in the bucket, as a launch does
        (``tamper``: another runner under the pinned key)."""
        document = render(spec, SECRETS, BootInputs(self.runner, delete_volume=True))
        for upload in document.uploads:
            data = b"not the pinned runner" if tamper and upload.key.endswith(".pyz") \
                else upload.data
            put(self.server, self.bucket, upload.key, data, self.tmp)
        return document

    def gone(self, launched: Launched) -> bool:
        state = self.emulator.state
        return launched.instance_id not in state.instances and \
            launched.block_id not in state.blocks

    def wait_gone(self, launched: Launched, timeout: float = 60.0) -> bool:
        return wait_until(lambda: self.gone(launched), timeout)

    def remote(self, prefix: str) -> dict[str, int]:
        done = self.server.s5("ls", f"s3://{self.bucket}/{prefix}*", check=False)
        items = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        return {i["key"].split("/", 3)[3]: i.get("size", 0) for i in items
                if i.get("type") == "file"}

    def fetch(self, key: str, dest: Path) -> bytes:
        target = dest / key.replace("/", "_")
        self.server.s5("cp", f"s3://{self.bucket}/{key}", str(target))
        return target.read_bytes()

    def diagnostics(self, instance_id: str) -> str:
        """The machine's console and the backend's log, secrets masked (for failures)."""
        view = self.hypervisor.machine(instance_id)
        console = view.console.read_text() if view.console.exists() else "(no console)"
        text = f"{view}\n--- console ---\n{console[-4000:]}\n--- log ---\n" + \
            "\n".join(self.log[-30:])
        for value in SECRET_VALUES:
            text = text.replace(value, "***")
        return text


@pytest.fixture
def sandbox_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="launcher-sandbox-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def make_bed(make_emulator, s3_server, bucket, sandbox_root, runner_pyz,  # noqa: F811
             tmp_path) -> Iterator[Callable[..., Bed]]:
    """``make(**hypervisor_options) -> Bed``; the hypervisor is closed after the test."""
    made: list[ProcessHypervisor] = []

    def make(**options) -> Bed:
        log: list[str] = []
        options.setdefault("delete_grace_s", 10.0)
        options.setdefault("stop_grace_s", 5.0)
        hypervisor = ProcessHypervisor(sandbox_root, log=log.append, **options)
        made.append(hypervisor)
        emulator = make_emulator(hypervisor=hypervisor)
        client = client_for(emulator.url)
        tarball = code_tarball(TRAIN_PY.encode())
        sha = hashlib.sha256(tarball).hexdigest()
        key = f"code/{RUN_ID}-{sha[:12]}.tar.gz"
        put(s3_server, bucket, key, tarball, tmp_path)
        for rel, data in DATASET.items():
            put(s3_server, bucket, f"{DATA_PREFIX}/{rel}", data, tmp_path)
        return Bed(hypervisor, emulator, client, s3_server, bucket, key, sha, runner_pyz,
                   tmp_path, log)

    yield make
    for hypervisor in made:
        hypervisor.close()
