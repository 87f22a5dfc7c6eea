"""The bed for whole Vast runs in the sandbox: SeaweedFS as the bucket (with presigned URLs
made by ``s5cmd presign``, as the launcher makes them), the stub Vast API whose destroy calls
the sandbox's ``instance_deleted``, and a :class:`ContainerSandbox` running the rendered
onstart with the instance's environment."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
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
from runner.container.stubvast import FAKE_CONTAINER_KEY, StubVast
from support.keys import FAKE_B2_APP_KEY, FAKE_B2_KEY_ID, FAKE_WANDB_KEY

from launcher.render import build_runner_zipapp
from launcher.render.onstart import OnstartInputs, RenderedOnstart, render, s5cmd_pin
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
from launcher.sandbox.container import ContainerRequest, ContainerSandbox, ContainerView
from sandbox.conftest import DATA_PREFIX, DATASET

RUN_ID = "vast-sbx-1"
INSTANCE_ID = "31337"
ENV = {"B2_KEY_ID": FAKE_B2_KEY_ID, "B2_APP_KEY": FAKE_B2_APP_KEY,
       "WANDB_API_KEY": FAKE_WANDB_KEY}
SECRET_VALUES = (*ENV.values(), FAKE_CONTAINER_KEY)
TRAIN_PY = '''import json, os, pathlib, sys, time
print("user", os.environ["USER"], "tags", os.environ.get("WANDB_TAGS", ""), flush=True)
for name in ("B2_KEY_ID", "B2_APP_KEY", "CONTAINER_API_KEY", "AWS_SECRET_ACCESS_KEY"):
    assert name not in os.environ, name + " reached the trainer"
time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0)
data = pathlib.Path(os.environ["LAUNCHER_DATA_DIR"])
ckpt = pathlib.Path(os.environ["LAUNCHER_CHECKPOINT_DIR"]) / "step-3" / "model.bin"
ckpt.parent.mkdir(parents=True, exist_ok=True)
ckpt.write_bytes(b"weights")
files = sorted(p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file())
(pathlib.Path(os.environ["LAUNCHER_REPORT_DIR"]) / "report.json").write_text(json.dumps(files))
print("done", flush=True)
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
'''


@dataclass
class VastBed:
    sandbox: ContainerSandbox
    stub: StubVast
    server: S3Server
    bucket: str
    tmp: Path
    runner: bytes
    log: list[str] = field(default_factory=list)

    def spec(self, *args: str, **changes) -> RunSpec:
        tarball = _tarball()
        sha = hashlib.sha256(tarball).hexdigest()
        key = f"code/{RUN_ID}-{sha[:12]}.tar.gz"
        self.put(key, tarball)
        version, s5_sha = s5cmd_pin()
        fields = dict(
            run_id=RUN_ID, stage="demo", command=("python3", "train.py", *args),
            code=CodeSource(tarball_key=key, sha256=sha),
            storage=Storage(self.server.endpoint, self.bucket, DATA_PREFIX, region="us-east-1"),
            volume=VolumeSpec(block_id="", mount_id="", mount_point=VAST_CACHE_DIR),
            deadline_epoch=time.time() + 3600,
            placement=Placement(provider="vast", gpu_type="RTX 4090", gpu_count=1),
            health=HealthSpec(cpu_only=True, min_gpus=0, min_vram_gb=0, min_disk_mb_s=1.0),
            wandb=WandbSpec(project="sandbox", mode="offline"), api_url=self.stub.url,
            heartbeat_s=2,
            container=ContainerSpec(s5cmd_version=version, s5cmd_sha256=s5_sha,
                                    watchdog_interval_s=1.0, watchdog_stale_s=600.0))
        fields.update(changes)
        return RunSpec(**fields)

    def put(self, key: str, data: bytes) -> None:
        put(self.server, self.bucket, key, data, self.tmp)

    def presign(self, key: str) -> str:
        """A presigned GET, signed by the read-only identity (the URL names its key id)."""
        done = subprocess.run([self.server.s5cmd, f"--endpoint-url={self.server.endpoint}",
                               "presign", "--expire", "1h", f"s3://{self.bucket}/{key}"],
                              env=self.server.env(READER_ID, READER_SECRET),
                              capture_output=True, text=True, timeout=30, check=True)
        return done.stdout.strip()

    def onstart(self, spec: RunSpec, *, tamper: bool = False) -> RenderedOnstart:
        """Put runner.pyz and run.json in the bucket, presign both, render the onstart
        (``tamper``: the bucket holds another runner than the one pinned)."""
        spec_bytes = (spec.to_json() + "\n").encode()
        pins = {}
        for name, data in (("runner.pyz", self.runner), ("run.json", spec_bytes)):
            sha = hashlib.sha256(data).hexdigest()
            key = f"runs/{RUN_ID}/boot/{name.replace('.', '-' + sha[:16] + '.')}"
            self.put(key, b"not the pinned runner" if tamper and name == "runner.pyz" else data)
            pins[name] = (self.presign(key), sha)
        return render(OnstartInputs(pins["runner.pyz"][0], pins["runner.pyz"][1],
                                    pins["run.json"][0], pins["run.json"][1], self.stub.url),
                      secrets={**ENV, "CONTAINER_API_KEY": FAKE_CONTAINER_KEY})

    def launch(self, spec: RunSpec, **options) -> ContainerView:
        text = self.onstart(spec, **options).text
        self.stub.instances.add(INSTANCE_ID)
        return self.sandbox.start(ContainerRequest(
            INSTANCE_ID, text, dict(ENV), FAKE_CONTAINER_KEY, self.stub.url, label=RUN_ID,
            image="pytorch/pytorch:2.9.0-cuda12.8-cudnn9-devel", disk_gb=40))

    def wait_destroyed(self, timeout: float = 90.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if INSTANCE_ID not in self.stub.instances and \
                    self.sandbox.view(INSTANCE_ID).state == "destroyed":
                return True
            time.sleep(0.2)
        return False

    @property
    def root(self) -> Path:
        return self.sandbox.root / INSTANCE_ID

    def state(self, name: str) -> Path:
        return self.root / "var/lib/launcher" / name

    def remote(self) -> dict[str, int]:
        return self.server.listing(self.bucket, f"runs/{RUN_ID}/")

    def fetch(self, key: str) -> bytes:
        target = self.tmp / key.replace("/", "_")
        self.server.s5("cp", f"s3://{self.bucket}/runs/{RUN_ID}/{key}", str(target))
        return target.read_bytes()

    def diagnostics(self) -> str:
        texts = []
        for path in (self.root / "console.log", self.root / "workspace/launcher/onstart.log",
                     self.root / "var/log/launcher/console.log",
                     self.root / "var/log/launcher/runner.log"):
            if path.exists():
                texts.append(f"--- {path.name} ---\n{path.read_text()[-3000:]}")
        text = "\n".join(texts + self.log[-20:]) or "(nothing)"
        for value in SECRET_VALUES:
            text = text.replace(value, "***")
        return text

    def leaks(self) -> list[str]:
        """Files under the container holding a secret (the secrets file is removed on
        destroy), names only."""
        found = []
        for path in self.root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                if any(v.encode() in data for v in SECRET_VALUES):
                    found.append(str(path.relative_to(self.root)))
        return found


def _tarball() -> bytes:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = TRAIN_PY.encode()
        info = tarfile.TarInfo("train.py")
        info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="session")
def runner_pyz() -> bytes:
    return build_runner_zipapp()


@pytest.fixture
def vast_bed(s3_server, bucket, runner_pyz, tmp_path) -> Iterator[Callable[..., VastBed]]:  # noqa: F811
    root = Path(tempfile.mkdtemp(prefix="launcher-vast-"))
    root.chmod(0o755)
    made: list[VastBed] = []

    def make() -> VastBed:
        log: list[str] = []
        sandbox = ContainerSandbox(root, delete_grace_s=20.0, stop_grace_s=5.0, log=log.append)
        stub = StubVast(on_delete=lambda iid: sandbox.instance_deleted(
            ContainerRequest(iid, ""))).start()
        for rel, data in DATASET.items():
            put(s3_server, bucket, f"{DATA_PREFIX}/{rel}", data, tmp_path)
        bed = VastBed(sandbox, stub, s3_server, bucket, tmp_path, runner_pyz, log)
        made.append(bed)
        return bed

    try:
        yield make
    finally:
        for bed in made:
            bed.sandbox.close()
            bed.stub.stop()
        shutil.rmtree(root, ignore_errors=True)
