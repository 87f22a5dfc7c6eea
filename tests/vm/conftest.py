"""The VM bed: the Vultr emulator with a :class:`VmHypervisor`, SeaweedFS as the bucket
(``tests/runner/conftest.py``) and a CPU-only run rendered by the real renderer, launched
through the emulator's API as ``launcher run`` would (the approach of ``tests/sandbox``).

The guest image is taken from the cache, or built once (root, debootstrap, a Debian mirror
and PyPI needed; minutes) unless ``LAUNCHER_VM_BUILD=0``; a missing prerequisite skips the
tests with the reason. The guest reaches only the emulator and the S3 server, through
explicit forwards; the document is rendered with the URLs the guest uses for them.
"""

from __future__ import annotations

import hashlib
import json
import os
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
from sandbox.conftest import (
    DATA_PREFIX,
    DATASET,
    RUN_ID,
    SECRET_VALUES,
    SECRETS,
    code_tarball,
    runner_pyz,  # noqa: F401 - fixture
)

from launcher.render import render
from launcher.runner.spec import (
    CodeSource,
    HealthSpec,
    RunSpec,
    Storage,
    VolumeSpec,
    WandbSpec,
)
from launcher.vmhost import GuestImage, ImageError, cached_image, ensure_image
from launcher.vmhost.backend import FINAL, VmHypervisor, VmState
from launcher.vultr import BlockSpec, InstanceSpec

API_GUEST_ADDR = "169.254.100.10"
S3_GUEST_ADDR = "169.254.100.11"
QEMU_TOOLS = ("qemu-system-x86_64", "qemu-img")


@pytest.fixture(scope="session")
def guest_image() -> GuestImage:
    """The cached guest image, built now if missing (skips with the reason when it cannot)."""
    missing = [tool for tool in QEMU_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install qemu-system-x86 qemu-utils)")
    image = cached_image()
    if image is not None:
        return image
    if os.environ.get("LAUNCHER_VM_BUILD") == "0":
        pytest.skip("no cached guest image and LAUNCHER_VM_BUILD=0: run `make vm-image`")
    try:
        return ensure_image()
    except ImageError as exc:
        pytest.skip(f"the guest image cannot be built here: {exc}")


@dataclass
class Launched:
    instance_id: str
    block_id: str
    mount_id: str
    spec: RunSpec
    created_t: float


@dataclass
class VmBed:
    """The emulator (with the VM backend), a client, the bucket, and how to launch a run."""

    hypervisor: VmHypervisor
    emulator: object
    client: object
    server: S3Server
    bucket: str
    tarball_key: str
    sha256: str
    runner: bytes
    api_url: str
    s3_url: str
    log: list[str] = field(default_factory=list)
    guest_calls: list[tuple[float, str, str, int]] = field(default_factory=list)

    def spec(self, block, **changes) -> RunSpec:
        fields = dict(
            run_id=RUN_ID, stage="demo", command=("python3", "train.py", "--steps", "3"),
            code=CodeSource(tarball_key=self.tarball_key, sha256=self.sha256),
            storage=Storage(self.s3_url, self.bucket, DATA_PREFIX, region="us-east-1"),
            volume=VolumeSpec(block_id=block.id, mount_id=block.mount_id, device_wait_s=600),
            deadline_epoch=time.time() + 3600,
            health=HealthSpec(cpu_only=True, min_gpus=0, min_vram_gb=0, min_disk_mb_s=1.0,
                              matmul=False),
            wandb=WandbSpec(project="vm", mode="offline"),
            api_url=self.api_url, heartbeat_s=30)
        fields.update(changes)
        return RunSpec(**fields)

    def launch(self, **changes) -> Launched:
        """Create a volume and an instance carrying the rendered document (no attach yet)."""
        block = self.client.create_block(BlockSpec(REGION, 50, f"{RUN_ID}-cache"))
        spec = self.spec(block, **changes)
        text = render(spec, SECRETS, self.runner).text
        instance = self.client.create_instance(InstanceSpec(
            REGION, PLAN, RUN_ID, snapshot_id=SNAPSHOT_ID, tags=("launcher", f"run:{RUN_ID}"),
            user_data=text))
        self.client.wait_instance_ready(instance.id)
        return Launched(instance.id, block.id, block.mount_id, spec, time.time())

    def wait_metadata_served(self, instance_id: str, timeout: float) -> VmState:
        def seen() -> bool:
            view = self.hypervisor.machine(instance_id)
            return bool(view.metadata_served) or view.state in FINAL

        return self._until(seen, timeout, instance_id)

    def wait_gone(self, run: Launched, timeout: float) -> bool:
        state = self.emulator.state
        self._until(lambda: run.instance_id not in state.instances
                    and run.block_id not in state.blocks, timeout, run.instance_id)
        return run.instance_id not in state.instances and run.block_id not in state.blocks

    def _until(self, done: Callable[[], object], timeout: float, instance_id: str) -> VmState:
        deadline = time.monotonic() + timeout
        delay = 0.5
        while not done() and time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 1.5, 5.0)
        return self.hypervisor.machine(instance_id)

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
        """The VM's console tail and the backend's log, secrets masked (for failures)."""
        view = self.hypervisor.machine(instance_id)
        console = view.console.read_text(errors="replace") if view.console.exists() else ""
        text = (f"{view.state} {view.reason}\n--- console ---\n{console[-6000:]}\n--- log ---\n"
                + "\n".join(self.log[-40:]) + "\n--- guest calls ---\n"
                + "\n".join(map(str, self.guest_calls)))
        for value in SECRET_VALUES:
            text = text.replace(value, "***")
        return text


@pytest.fixture
def vm_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="launcher-vm-test-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def make_vm_bed(guest_image, make_emulator, s3_server, bucket, vm_root,  # noqa: F811
                runner_pyz, tmp_path) -> Iterator[Callable[..., VmBed]]:  # noqa: F811
    """``make(**hypervisor_options) -> VmBed``; every VM is stopped after the test."""
    made: list[VmHypervisor] = []

    def make(**options) -> VmBed:
        log: list[str] = []
        hypervisor = VmHypervisor(guest_image, vm_root, log=log.append, **options)
        made.append(hypervisor)
        emulator = make_emulator(hypervisor=hypervisor)
        api_url = hypervisor.forward(emulator.url, API_GUEST_ADDR)
        s3_url = hypervisor.forward(s3_server.endpoint, S3_GUEST_ADDR)
        tarball = code_tarball()
        sha = hashlib.sha256(tarball).hexdigest()
        key = f"code/{RUN_ID}-{sha[:12]}.tar.gz"
        put(s3_server, bucket, key, tarball, tmp_path)
        for rel, data in DATASET.items():
            put(s3_server, bucket, f"{DATA_PREFIX}/{rel}", data, tmp_path)
        bed = VmBed(hypervisor, emulator, client_for(emulator.url), s3_server, bucket, key, sha,
                    runner_pyz, api_url, s3_url, log)
        emulator.add_listener(lambda ex: _guest_call(bed, ex))
        return bed

    yield make
    for hypervisor in made:
        hypervisor.close()


def _guest_call(bed: VmBed, exchange) -> None:
    """Record the calls the runner (User-Agent ``launcher/runner``) made to the emulator."""
    headers = {k.lower(): v for k, v in exchange.request_headers.items()}
    if headers.get("user-agent", "").startswith("launcher/runner"):
        bed.guest_calls.append((time.time(), exchange.method, exchange.path, exchange.status))
