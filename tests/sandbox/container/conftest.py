"""The bed for whole Vast runs in the sandbox: SeaweedFS as the bucket (with presigned URLs
made by ``s5cmd presign``, as the launcher makes them), the stub Vast API whose destroy calls
the sandbox's ``instance_deleted``, and a :class:`ContainerSandbox` running the rendered
onstart with the instance's environment."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from runner.container.stubvast import FAKE_CONTAINER_KEY, StubVast
from support.keys import FAKE_B2_APP_KEY, FAKE_B2_KEY_ID, FAKE_WANDB_KEY

from launcher.render.onstart import RenderedOnstart, render
from launcher.runner.spec import RunSpec
from launcher.sandbox.container import ContainerRequest, ContainerSandbox, ContainerView
from sandbox.conftest import DATA_PREFIX, DATASET
from sandbox.containerbed import ContainerBed, closing_beds, wait_until

RUN_ID = "vast-sbx-1"
INSTANCE_ID = "31337"
ENV = {"B2_KEY_ID": FAKE_B2_KEY_ID, "B2_APP_KEY": FAKE_B2_APP_KEY,
       "WANDB_API_KEY": FAKE_WANDB_KEY}
SECRET_VALUES = (*ENV.values(), FAKE_CONTAINER_KEY)
LOGS = ("console.log", "workspace/launcher/onstart.log", "var/log/launcher/console.log",
        "var/log/launcher/runner.log")
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
class VastBed(ContainerBed):
    run_id = RUN_ID
    data_prefix = DATA_PREFIX
    stub: StubVast

    def spec(self, *args: str, **changes) -> RunSpec:
        return self.run_spec(train_py=TRAIN_PY.encode(), api_url=self.stub.url,
                             gpu_type="RTX 4090", stage="demo",
                             command=("python3", "train.py", *args), **changes)

    def onstart(self, spec: RunSpec, *, tamper: bool = False) -> RenderedOnstart:
        """The onstart, runner.pyz and run.json presigned from the bucket (``tamper``: the
        bucket holds another runner than the one pinned)."""
        return render(self.onstart_inputs(spec, self.stub.url, tamper=tamper),
                      secrets={**ENV, "CONTAINER_API_KEY": FAKE_CONTAINER_KEY})

    def close(self) -> None:
        super().close()
        self.stub.stop()

    def launch(self, spec: RunSpec, **options) -> ContainerView:
        text = self.onstart(spec, **options).text
        self.stub.instances.add(INSTANCE_ID)
        return self.sandbox.start(ContainerRequest(
            INSTANCE_ID, text, dict(ENV), FAKE_CONTAINER_KEY, self.stub.url, label=RUN_ID,
            image="pytorch/pytorch:2.9.0-cuda12.8-cudnn9-devel", disk_gb=40))

    def wait_destroyed(self, timeout: float = 90.0) -> bool:
        return wait_until(lambda: INSTANCE_ID not in self.stub.instances
                          and self.sandbox.view(INSTANCE_ID).state == "destroyed", timeout)

    @property
    def root(self) -> Path:
        return self.sandbox.root / INSTANCE_ID

    def state(self, name: str) -> Path:
        return self.root / "var/lib/launcher" / name

    def diagnostics(self) -> str:
        return self.files_text(self.root, LOGS, SECRET_VALUES)

    def leaks(self) -> list[str]:
        """Files under the container holding a secret (the secrets file is removed on
        destroy), names only."""
        return self.files_holding(self.root, SECRET_VALUES)


@pytest.fixture
def vast_bed(s3_server, bucket, runner_pyz, sandbox_root,
             tmp_path) -> Iterator[Callable[..., VastBed]]:
    def make() -> VastBed:
        log: list[str] = []
        sandbox = ContainerSandbox(sandbox_root, delete_grace_s=20.0, stop_grace_s=5.0,
                                   log=log.append)
        stub = StubVast(on_delete=lambda iid: sandbox.instance_deleted(
            ContainerRequest(iid, ""))).start()
        bed = VastBed(sandbox, s3_server, bucket, tmp_path, runner_pyz, log, stub)
        bed.put_data(DATASET)
        return bed

    yield from closing_beds(make)
