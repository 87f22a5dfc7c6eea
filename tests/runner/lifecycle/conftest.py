"""Fixtures for the runner's lifecycle (self-destruct, supervisor, watchdog, hardening): a run
spec with every path in a temp dir, the Vultr emulator as the API, a stdlib metadata server on
127.0.0.1 serving ``/v1.json``, and a "world" — a volume attached to an instance tagged with
the run — for teardown to remove."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from support.keys import FAKE_B2_APP_KEY, FAKE_B2_KEY_ID, FAKE_VULTR_KEY, FAKE_WANDB_KEY
from support.metadata import MetadataServers

from launcher.runner.context import Context
from launcher.runner.retry import RetryPolicy
from launcher.runner.spec import (
    CodeSource,
    Paths,
    RunSecrets,
    RunSpec,
    Storage,
    VolumeSpec,
    scrub,
)
from launcher.runner.status import Reporter
from launcher.runner.teardown import TeardownOptions
from launcher.vultr import BlockSpec, InstanceSpec

RUN_ID = "run-life-1"
SNAPSHOT_ID = "5f0d2c1e-8a3b-4c6d-9e7f-0a1b2c3d4e5f"
PLAN = "vcg-a100-6c-60g-40vram"
REGION = "sea"
FAST_POLICY = RetryPolicy(max_attempts=None, deadline_s=5.0, base_delay=0.01, max_delay=0.05,
                          retry_after_cap=0.05)
FAST = TeardownOptions(api_timeout_s=5.0, api_policy=FAST_POLICY, detach_wait_s=3.0,
                       detach_poll_s=0.05, lock_wait_s=10.0, metadata_deadline_s=0.3,
                       umount_timeout_s=5.0, is_mounted=lambda path: False)


def fake_secrets(vultr_key: str = FAKE_VULTR_KEY) -> RunSecrets:
    return RunSecrets({"VULTR_KEY": vultr_key, "B2_KEY_ID": FAKE_B2_KEY_ID,
                       "B2_APP_KEY": FAKE_B2_APP_KEY, "WANDB_API_KEY": FAKE_WANDB_KEY})


def make_spec(root: Path, **changes) -> RunSpec:
    """Every path under ``root``; ``volume=dict(...)`` overrides volume fields."""
    volume = VolumeSpec(block_id="blk-none", mount_id="sea-000000000000",
                        mount_point=str(root / "mnt"))
    volume = replace(volume, **changes.pop("volume", {}))
    paths = Paths(state_dir=str(root / "state"), log_dir=str(root / "log"),
                  code_dir=str(root / "code"), secrets_file=str(root / "secrets.env"),
                  trainer_user="no-such-trainer-user")
    fields = {"run_id": RUN_ID, "stage": "diffusion", "command": ("true",),
              "code": CodeSource(tarball_key="code/x.tar.gz", sha256="0" * 64),
              "storage": Storage(endpoint_url="http://127.0.0.1:9", bucket="b",
                                 data_prefix="data"),
              "volume": volume, "paths": paths, "deadline_epoch": time.time() + 3600,
              "api_url": "http://127.0.0.1:9/v2", "metadata_url": "http://127.0.0.1:9",
              **changes}
    return RunSpec(**fields)


def make_context(spec: RunSpec, run_secrets: RunSecrets | None = None,
                 env: dict[str, str] | None = None, **options) -> Context:
    run_secrets = fake_secrets() if run_secrets is None else run_secrets
    reporter = Reporter(spec.run_id, spec.paths.state_dir, spec.paths.log_dir,
                        scrub=lambda text: scrub(text, run_secrets))
    env = env if env is not None else {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return Context(spec=spec, secrets=run_secrets, reporter=reporter, base_env=env, **options)


def read_status(spec: RunSpec) -> dict:
    return json.loads((Path(spec.paths.state_dir) / "status.json").read_text())


# -- the metadata service -----------------------------------------------------------------------

@pytest.fixture
def metadata() -> Iterator[Callable[[str], str]]:
    """``start(instance_id) -> url``: a metadata service on 127.0.0.1 for that instance."""
    servers = MetadataServers()
    yield lambda instance_id: servers.serve({"instance-v2-id": instance_id,
                                             "region": {"regioncode": "SEA"},
                                             "hostname": "run"})
    servers.close()


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- the world teardown removes -----------------------------------------------------------------

@dataclass
class World:
    """An instance tagged ``run:<RUN_ID>`` with a volume attached, and a spec and context
    pointing at the emulator and the metadata service."""

    emulator: object
    client: object
    instance_id: str
    block_id: str
    spec: RunSpec
    ctx: Context
    uploads: list[str] = field(default_factory=list)

    def instance_exists(self) -> bool:
        return self.instance_id in self.emulator.state.instances

    def block_exists(self) -> bool:
        return self.block_id in self.emulator.state.blocks

    def final_upload(self, ctx: Context) -> None:
        """A final-upload hook that records whether the instance still existed."""
        self.uploads.append("alive" if self.instance_exists() else "gone")

    def respec(self, **changes) -> None:
        self.spec = replace(self.spec, **changes)
        self.ctx = make_context(self.spec)


def launch_attached(client, run_id: str) -> tuple:
    """What a launch leaves for the runner: an instance tagged ``run:<run_id>`` with its
    volume attached live. Returns ``(instance, block)`` as the client reads them now."""
    block = client.create_block(BlockSpec(REGION, 50, f"{run_id}-cache"))
    instance = client.create_instance(InstanceSpec(
        REGION, PLAN, run_id, snapshot_id=SNAPSHOT_ID, tags=("launcher", f"run:{run_id}"),
        user_data="#cloud-config\n{}\n"))
    client.wait_instance_ready(instance.id)
    client.attach_block(block.id, instance.id, live=True)
    return instance, client.get_block(block.id)


@pytest.fixture
def world(tmp_path: Path, emulator, client, metadata) -> World:
    instance, block = launch_attached(client, RUN_ID)
    spec = make_spec(tmp_path, volume={"block_id": block.id, "mount_id": block.mount_id},
                     api_url=emulator.url, metadata_url=metadata(instance.id))
    return World(emulator, client, instance.id, block.id, spec, make_context(spec))


# -- processes ------------------------------------------------------------------------------

@pytest.fixture
def spawn() -> Iterator[Callable[..., object]]:
    """Start a bounded ``sleep``-like python child (reaped by a thread, so it never lingers
    as a zombie); every child is killed after the test."""
    import subprocess

    children: list[subprocess.Popen] = []

    def start(seconds: float = 60.0, new_session: bool = False) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"],
                                start_new_session=new_session)
        children.append(proc)
        threading.Thread(target=proc.wait, daemon=True).start()
        return proc

    yield start
    for proc in children:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
