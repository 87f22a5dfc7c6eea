"""What the sandbox's container beds share (``container/conftest.py``: the stub Vast API;
``vast/conftest.py``: the Vast emulator): SeaweedFS as the bucket, a container-mode run spec
whose code bundle is in the bucket, runner.pyz and run.json presigned by the read-only
identity (``s5cmd presign``, as the launcher makes them) for the rendered onstart, and a look
into a container's files for diagnostics and leaked secrets. Also the helpers every sandbox
bed uses: a code bundle of one ``train.py`` and a wait with a deadline and backoff."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar

from runner.conftest import READER_ID, READER_SECRET, S3Server, put

from launcher.render.onstart import OnstartInputs, s5cmd_pin
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


def code_tarball(train_py: bytes) -> bytes:
    """A code bundle holding only ``train.py`` (a fixed mtime: the same bytes every time)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("train.py")
        info.size, info.mode, info.mtime = len(train_py), 0o644, 1_700_000_000
        tar.addfile(info, io.BytesIO(train_py))
    return buffer.getvalue()


def wait_until(ready: Callable[[], bool], timeout: float, *, most: float = 1.0) -> bool:
    """Whether ``ready()`` came true before the deadline (polled with backoff)."""
    deadline, delay = time.monotonic() + timeout, 0.1
    while time.monotonic() < deadline:
        if ready():
            return True
        time.sleep(delay)
        delay = min(delay * 1.5, most)
    return False


@dataclass
class ContainerBed:
    """A container sandbox, the bucket, and the runner; a subclass names its ``run_id`` and
    the bucket prefix of its data."""

    run_id: ClassVar[str]
    data_prefix: ClassVar[str]
    sandbox: ContainerSandbox
    server: S3Server
    bucket: str
    tmp: Path
    runner: bytes
    log: list[str]

    def close(self) -> None:
        """Stop every container's processes (a subclass stops its API too)."""
        self.sandbox.close()

    def put(self, key: str, data: bytes) -> None:
        put(self.server, self.bucket, key, data, self.tmp)

    def put_data(self, files: dict[str, bytes]) -> None:
        """The run's data set, under ``data_prefix``."""
        for rel, data in files.items():
            self.put(f"{self.data_prefix}/{rel}", data)

    def run_spec(self, *, train_py: bytes, api_url: str, gpu_type: str,
                 **fields: object) -> RunSpec:
        """A CPU-only container-mode run (the cache under ``VAST_CACHE_DIR``) whose code
        bundle, ``train_py`` alone, is put in the bucket; ``fields`` add to or replace the
        spec's (``stage`` and ``command`` at least)."""
        tarball = code_tarball(train_py)
        sha = hashlib.sha256(tarball).hexdigest()
        key = f"code/{self.run_id}-{sha[:12]}.tar.gz"
        self.put(key, tarball)
        version, s5_sha = s5cmd_pin()
        spec = dict(
            run_id=self.run_id, code=CodeSource(tarball_key=key, sha256=sha),
            storage=Storage(self.server.endpoint, self.bucket, self.data_prefix,
                            region="us-east-1"),
            volume=VolumeSpec(block_id="", mount_id="", mount_point=VAST_CACHE_DIR),
            deadline_epoch=time.time() + 3600,
            placement=Placement(provider="vast", gpu_type=gpu_type, gpu_count=1),
            health=HealthSpec(cpu_only=True, min_gpus=0, min_vram_gb=0, min_disk_mb_s=1.0),
            wandb=WandbSpec(project="sandbox", mode="offline"), api_url=api_url,
            heartbeat_s=2,
            container=ContainerSpec(s5cmd_version=version, s5cmd_sha256=s5_sha,
                                    watchdog_interval_s=1.0, watchdog_stale_s=600.0))
        spec.update(fields)
        return RunSpec(**spec)

    def presign(self, key: str) -> str:
        """A presigned GET, signed by the read-only identity (the URL names its key id)."""
        done = subprocess.run([self.server.s5cmd, f"--endpoint-url={self.server.endpoint}",
                               "presign", "--expire", "1h", f"s3://{self.bucket}/{key}"],
                              env=self.server.env(READER_ID, READER_SECRET),
                              capture_output=True, text=True, timeout=30, check=True)
        return done.stdout.strip()

    def onstart_inputs(self, spec: RunSpec, api_url: str, *,
                       tamper: bool = False) -> OnstartInputs:
        """Put runner.pyz and run.json in the bucket, presign both, for the onstart
        (``tamper``: the bucket holds another runner than the one pinned)."""
        pins = {}
        for name, data in (("runner.pyz", self.runner),
                           ("run.json", (spec.to_json() + "\n").encode())):
            sha = hashlib.sha256(data).hexdigest()
            key = f"runs/{self.run_id}/boot/{name.replace('.', '-' + sha[:16] + '.')}"
            self.put(key, b"not the pinned runner" if tamper and name == "runner.pyz" else data)
            pins[name] = (self.presign(key), sha)
        return OnstartInputs(pins["runner.pyz"][0], pins["runner.pyz"][1],
                             pins["run.json"][0], pins["run.json"][1], api_url)

    def remote(self) -> dict[str, int]:
        return self.server.listing(self.bucket, f"runs/{self.run_id}/")

    def fetch(self, key: str) -> bytes:
        """A file of the run's prefix in the bucket."""
        target = self.tmp / key.replace("/", "_")
        self.server.s5("cp", f"s3://{self.bucket}/runs/{self.run_id}/{key}", str(target))
        return target.read_bytes()

    def files_text(self, root: Path, rels: Iterable[str], secrets: Iterable[str]) -> str:
        """The tails of a container's logs and of the bed's log, secrets masked."""
        texts = [f"--- {rel} ---\n{(root / rel).read_text()[-3000:]}" for rel in rels
                 if (root / rel).exists()]
        text = "\n".join(texts + self.log[-20:]) or "(nothing)"
        for value in secrets:
            text = text.replace(value, "***")
        return text

    @staticmethod
    def files_holding(root: Path, secrets: Iterable[str]) -> list[str]:
        """The files under a container holding a secret, names only."""
        values = [v.encode() for v in secrets]
        return [str(p.relative_to(root)) for p in root.rglob("*")
                if p.is_file() and not p.is_symlink()
                and any(v in p.read_bytes() for v in values)]


BedT = TypeVar("BedT", bound=ContainerBed)


def closing_beds(build: Callable[..., BedT]) -> Iterator[Callable[..., BedT]]:
    """A bed fixture's body: ``build`` as the test's factory, every bed it made closed after
    the test (``yield from closing_beds(build)``)."""
    made: list[BedT] = []

    def make(**options: object) -> BedT:
        made.append(build(**options))
        return made[-1]

    yield make
    for bed in made:
        bed.close()
