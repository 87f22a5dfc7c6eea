"""The bed for the Vast emulator driving the container sandbox: a :class:`VastEmulator` whose
hypervisor is a :class:`ContainerSandbox`, SeaweedFS as the bucket (runner.pyz and run.json
presigned by a read-only identity, as the launcher does), and the launcher's own Vast client
creating the instance with an onstart rendered by :mod:`launcher.render.onstart`. The
container gets ``CONTAINER_ID`` and ``CONTAINER_API_KEY`` from the emulator's hook, so the
runner destroys its instance through the emulator with its per-instance key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.keys import FAKE_B2_APP_KEY, FAKE_B2_KEY_ID, FAKE_VAST_KEY, FAKE_WANDB_KEY

from launcher.demo.bed import DATA_PREFIX, dataset_rows
from launcher.demo.vast import ContainerLog
from launcher.emulator.vast import VastEmulator, VastTiming
from launcher.render.onstart import render
from launcher.runner.spec import RunSpec
from launcher.sandbox.container import ContainerSandbox
from launcher.secrets import Secret
from launcher.vast import InstanceSpec, VastClient
from launcher.vast.config import VastSettings
from sandbox.containerbed import ContainerBed, closing_beds, wait_until

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE_TRAIN = ROOT / "examples" / "tiny-train" / "train.py"
EXAMPLE_COMMAND = ("python3", "train.py", "--steps", "400", "--save-every", "100")
RUN_ID = "vast-glue-1"
IMAGE = "pytorch/pytorch:2.9.0-cuda12.8-cudnn9-devel"
ENV = {"B2_KEY_ID": FAKE_B2_KEY_ID, "B2_APP_KEY": FAKE_B2_APP_KEY,
       "WANDB_API_KEY": FAKE_WANDB_KEY}
LOGS = ("console.log", "workspace/launcher/onstart.log", "var/log/launcher/runner.log")


@dataclass
class VastGlue(ContainerBed):
    run_id = RUN_ID
    data_prefix = DATA_PREFIX
    emulator: VastEmulator
    client: VastClient
    instance_keys: list[str] = field(default_factory=list)

    def close(self) -> None:
        super().close()
        self.client.close()
        self.emulator.stop()

    def spec(self, command: tuple[str, ...] = EXAMPLE_COMMAND) -> RunSpec:
        """The example stage (examples/tiny-train/train.py) as a container-mode run."""
        return self.run_spec(train_py=EXAMPLE_TRAIN.read_bytes(), api_url=self.emulator.url,
                             gpu_type="A100 SXM4", stage="example", command=command)

    def onstart(self, spec: RunSpec, *, tamper: bool = False) -> str:
        """runner.pyz and run.json into the bucket, presigned, rendered into the onstart
        (``tamper``: the bucket's runner.pyz is not the pinned one)."""
        inputs = self.onstart_inputs(spec, self.emulator.url, tamper=tamper)
        return render(inputs, secrets=ENV).text

    def create(self, spec: RunSpec, *, tamper: bool = False, label: str = RUN_ID) -> int:
        """Create the instance through the API (the cheapest rentable offer)."""
        offer = min(i for i, row in self.emulator.state.offers.items() if row["rentable"])
        created = self.client.create_instance(offer, InstanceSpec(
            image=IMAGE, label=label, disk_gb=40, env=dict(ENV),
            onstart=self.onstart(spec, tamper=tamper)))
        assert created.instance_api_key is not None
        self.instance_keys.append(created.instance_api_key.reveal())
        return created.id

    def wait_gone(self, iid: int, timeout: float = 120.0) -> bool:
        """Until the emulator holds no instance and the container is destroyed."""
        return wait_until(lambda: not self.emulator.state.listed()
                          and self.sandbox.view(str(iid)).state == "destroyed", timeout)

    def wait_file(self, iid: int, rel: str, timeout: float = 90.0) -> Path:
        path = self.sandbox.root / str(iid) / rel
        if not wait_until(lambda: path.is_file() and bool(path.read_text().strip()), timeout):
            raise AssertionError(f"no {rel}: {self.diagnostics(iid)}")
        return path

    def secret_values(self) -> tuple[str, ...]:
        return (*ENV.values(), FAKE_VAST_KEY, *self.instance_keys)

    def diagnostics(self, iid: int) -> str:
        return self.files_text(self.sandbox.root / str(iid), LOGS, self.secret_values())

    def leaks(self, iid: int) -> list[str]:
        """Files of the container holding a secret, names only."""
        return self.files_holding(self.sandbox.root / str(iid), self.secret_values())


@pytest.fixture
def vast_glue(s3_server, bucket, runner_pyz, sandbox_root,
              tmp_path) -> Iterator[Callable[..., VastGlue]]:
    def make(*, delete_grace_s: float = 20.0) -> VastGlue:
        log: list[str] = []
        output = ContainerLog()
        sandbox = ContainerSandbox(sandbox_root, delete_grace_s=delete_grace_s,
                                   stop_grace_s=5.0, log=log.append, output=output)
        emulator = VastEmulator(api_key=FAKE_VAST_KEY, timing=VastTiming.instant(),
                                hypervisor=sandbox, seed=None)
        output.emulator = emulator
        url = emulator.start()
        client = VastClient.from_settings(VastSettings(api_url=url,
                                                       api_key=Secret(FAKE_VAST_KEY)))
        glue = VastGlue(sandbox, s3_server, bucket, tmp_path, runner_pyz, log, emulator,
                        client)
        glue.put_data({name: text.encode() for name, text in dataset_rows().items()})
        return glue

    yield from closing_beds(make)
