"""The bed for the Vast emulator driving the container sandbox: a :class:`VastEmulator` whose
hypervisor is a :class:`ContainerSandbox`, SeaweedFS as the bucket (runner.pyz and run.json
presigned by a read-only identity, as the launcher does), and the launcher's own Vast client
creating the instance with an onstart rendered by :mod:`launcher.render.onstart`. The
container gets ``CONTAINER_ID`` and ``CONTAINER_API_KEY`` from the emulator's hook, so the
runner destroys its instance through the emulator with its per-instance key."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from runner.conftest import (  # noqa: F401 - fixtures
    READER_ID,
    READER_SECRET,
    S3Server,
    bucket,
    put,
    s3_server,
)
from support.keys import FAKE_B2_APP_KEY, FAKE_B2_KEY_ID, FAKE_VAST_KEY, FAKE_WANDB_KEY

from launcher.demo.bed import DATA_PREFIX, dataset_rows
from launcher.emulator.vast import VastEmulator, VastTiming
from launcher.render import build_runner_zipapp
from launcher.render.onstart import OnstartInputs, render, s5cmd_pin
from launcher.runner.spec import (
    VAST_CACHE_DIR,
    CodeSource,
    ContainerSpec,
    HealthSpec,
    Placement,
    RunSpec,
    Storage,
    VolumeSpec,
    WandbSpec,
)
from launcher.sandbox.container import ContainerSandbox
from launcher.secrets import Secret
from launcher.vast import InstanceSpec, VastClient
from launcher.vast.config import VastSettings

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE_TRAIN = ROOT / "examples" / "tiny-train" / "train.py"
EXAMPLE_COMMAND = ("python3", "train.py", "--steps", "400", "--save-every", "100")
RUN_ID = "vast-glue-1"
IMAGE = "pytorch/pytorch:2.9.0-cuda12.8-cudnn9-devel"
ENV = {"B2_KEY_ID": FAKE_B2_KEY_ID, "B2_APP_KEY": FAKE_B2_APP_KEY,
       "WANDB_API_KEY": FAKE_WANDB_KEY}


@dataclass
class VastGlue:
    emulator: VastEmulator
    sandbox: ContainerSandbox
    client: VastClient
    server: S3Server
    bucket: str
    tmp: Path
    runner: bytes
    log: list[str] = field(default_factory=list)
    instance_keys: list[str] = field(default_factory=list)

    def spec(self, command: tuple[str, ...] = EXAMPLE_COMMAND) -> RunSpec:
        """The example stage's run spec, as a container-mode run against this bed."""
        tarball = example_tarball()
        sha = hashlib.sha256(tarball).hexdigest()
        key = f"code/{RUN_ID}-{sha[:12]}.tar.gz"
        put(self.server, self.bucket, key, tarball, self.tmp)
        version, s5_sha = s5cmd_pin()
        return RunSpec(
            run_id=RUN_ID, stage="example", command=command,
            code=CodeSource(tarball_key=key, sha256=sha),
            storage=Storage(self.server.endpoint, self.bucket, DATA_PREFIX, region="us-east-1"),
            volume=VolumeSpec(block_id="", mount_id="", mount_point=VAST_CACHE_DIR),
            deadline_epoch=time.time() + 3600,
            placement=Placement(provider="vast", gpu_type="A100 SXM4", gpu_count=1),
            health=HealthSpec(cpu_only=True, min_gpus=0, min_vram_gb=0, min_disk_mb_s=1.0),
            wandb=WandbSpec(project="sandbox", mode="offline"), api_url=self.emulator.url,
            heartbeat_s=2,
            container=ContainerSpec(s5cmd_version=version, s5cmd_sha256=s5_sha,
                                    watchdog_interval_s=1.0, watchdog_stale_s=600.0))

    def presign(self, key: str) -> str:
        done = subprocess.run([self.server.s5cmd, f"--endpoint-url={self.server.endpoint}",
                               "presign", "--expire", "1h", f"s3://{self.bucket}/{key}"],
                              env=self.server.env(READER_ID, READER_SECRET),
                              capture_output=True, text=True, timeout=30, check=True)
        return done.stdout.strip()

    def onstart(self, spec: RunSpec) -> str:
        """runner.pyz and run.json into the bucket, presigned, rendered into the onstart."""
        pins = {}
        for name, data in (("runner.pyz", self.runner),
                           ("run.json", (spec.to_json() + "\n").encode())):
            sha = hashlib.sha256(data).hexdigest()
            key = f"runs/{RUN_ID}/boot/{name.replace('.', '-' + sha[:16] + '.')}"
            put(self.server, self.bucket, key, data, self.tmp)
            pins[name] = (self.presign(key), sha)
        inputs = OnstartInputs(pins["runner.pyz"][0], pins["runner.pyz"][1],
                               pins["run.json"][0], pins["run.json"][1], self.emulator.url)
        return render(inputs, secrets=ENV).text

    def create(self, spec: RunSpec) -> int:
        """Create the instance through the API (the cheapest rentable offer)."""
        offer = min(i for i, row in self.emulator.state.offers.items() if row["rentable"])
        created = self.client.create_instance(offer, InstanceSpec(
            image=IMAGE, label=RUN_ID, disk_gb=40, env=dict(ENV), onstart=self.onstart(spec)))
        assert created.instance_api_key is not None
        self.instance_keys.append(created.instance_api_key.reveal())
        return created.id

    def wait_gone(self, iid: int, timeout: float = 120.0) -> bool:
        """Until the emulator holds no instance and the container is destroyed."""
        deadline, delay = time.monotonic() + timeout, 0.1
        while time.monotonic() < deadline:
            if not self.emulator.state.listed() and \
                    self.sandbox.view(str(iid)).state == "destroyed":
                return True
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)
        return False

    def wait_file(self, iid: int, rel: str, timeout: float = 90.0) -> Path:
        path = self.sandbox.root / str(iid) / rel
        deadline, delay = time.monotonic() + timeout, 0.1
        while time.monotonic() < deadline:
            if path.is_file() and path.read_text().strip():
                return path
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)
        raise AssertionError(f"no {rel}: {self.diagnostics(iid)}")

    def remote(self) -> dict[str, int]:
        return self.server.listing(self.bucket, f"runs/{RUN_ID}/")

    def fetch(self, key: str) -> bytes:
        target = self.tmp / key.replace("/", "_")
        self.server.s5("cp", f"s3://{self.bucket}/runs/{RUN_ID}/{key}", str(target))
        return target.read_bytes()

    def secret_values(self) -> tuple[str, ...]:
        return (*ENV.values(), FAKE_VAST_KEY, *self.instance_keys)

    def diagnostics(self, iid: int) -> str:
        root, texts = self.sandbox.root / str(iid), []
        for rel in ("console.log", "workspace/launcher/onstart.log",
                    "var/log/launcher/runner.log"):
            if (root / rel).exists():
                texts.append(f"--- {rel} ---\n{(root / rel).read_text()[-3000:]}")
        text = "\n".join(texts + self.log[-20:]) or "(nothing)"
        for value in self.secret_values():
            text = text.replace(value, "***")
        return text

    def leaks(self, iid: int) -> list[str]:
        """Files of the container holding a secret, names only."""
        root = self.sandbox.root / str(iid)
        return [str(p.relative_to(root)) for p in root.rglob("*")
                if p.is_file() and not p.is_symlink()
                and any(v.encode() in p.read_bytes() for v in self.secret_values())]


def example_tarball() -> bytes:
    """The example stage's code (examples/tiny-train/train.py) as the code bundle."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = EXAMPLE_TRAIN.read_bytes()
        info = tarfile.TarInfo("train.py")
        info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="session")
def runner_pyz() -> bytes:
    return build_runner_zipapp()


@pytest.fixture
def vast_glue(s3_server, bucket, runner_pyz, tmp_path  # noqa: F811
              ) -> Iterator[Callable[..., VastGlue]]:
    root = Path(tempfile.mkdtemp(prefix="launcher-vastglue-"))
    root.chmod(0o755)  # a root-run test trains as `nobody`, which must reach the code
    made: list[VastGlue] = []

    def make(*, delete_grace_s: float = 20.0) -> VastGlue:
        log: list[str] = []
        sandbox = ContainerSandbox(root, delete_grace_s=delete_grace_s, stop_grace_s=5.0,
                                   log=log.append)
        emulator = VastEmulator(api_key=FAKE_VAST_KEY, timing=VastTiming.instant(),
                                hypervisor=sandbox, seed=None)
        url = emulator.start()
        client = VastClient.from_settings(VastSettings(api_url=url,
                                                       api_key=Secret(FAKE_VAST_KEY)))
        for name, text in dataset_rows().items():
            put(s3_server, bucket, f"{DATA_PREFIX}/{name}", text.encode(), tmp_path)
        glue = VastGlue(emulator, sandbox, client, s3_server, bucket, tmp_path, runner_pyz,
                        log)
        made.append(glue)
        return glue

    try:
        yield make
    finally:
        for glue in made:
            glue.sandbox.close()
            glue.client.close()
            glue.emulator.stop()
        shutil.rmtree(root, ignore_errors=True)
