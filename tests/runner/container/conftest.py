"""Container mode's fixtures: a Vast run spec with every path in a temp dir, its context, and
the stub Vast API on 127.0.0.1 (``stubvast.py``)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from support.keys import FAKE_B2_APP_KEY, FAKE_B2_KEY_ID, FAKE_WANDB_KEY

from launcher.runner.context import Context
from launcher.runner.retry import RetryPolicy
from launcher.runner.spec import (
    CodeSource,
    ContainerSpec,
    HealthSpec,
    Paths,
    Placement,
    RunSecrets,
    RunSpec,
    Storage,
    VolumeSpec,
    scrub,
)
from launcher.runner.status import Reporter

from .stubvast import FAKE_CONTAINER_KEY, StubVast

RUN_ID = "vast-run-1"
INSTANCE_ID = "4242"
FAST_POLICY = RetryPolicy(max_attempts=None, deadline_s=3.0, base_delay=0.01, max_delay=0.05,
                          retry_after_cap=0.05)
SECRET_VALUES = (FAKE_B2_KEY_ID, FAKE_B2_APP_KEY, FAKE_WANDB_KEY, FAKE_CONTAINER_KEY)


def container_secrets() -> RunSecrets:
    return RunSecrets({"B2_KEY_ID": FAKE_B2_KEY_ID, "B2_APP_KEY": FAKE_B2_APP_KEY,
                       "WANDB_API_KEY": FAKE_WANDB_KEY, "CONTAINER_API_KEY": FAKE_CONTAINER_KEY})


def vast_spec(root: Path, api_url: str = "http://127.0.0.1:9/api/v0", **changes) -> RunSpec:
    fields = dict(
        run_id=RUN_ID, stage="diffusion", command=("true",),
        code=CodeSource(tarball_key="code/x.tar.gz", sha256="0" * 64),
        storage=Storage(endpoint_url="http://127.0.0.1:9", bucket="b", data_prefix="data"),
        volume=VolumeSpec(block_id="", mount_id="", mount_point=str(root / "cache")),
        deadline_epoch=time.time() + 3600,
        placement=Placement(provider="vast", gpu_type="RTX 4090", gpu_count=1),
        health=HealthSpec(cpu_only=True, min_gpus=0, min_vram_gb=0, min_disk_mb_s=1.0),
        paths=Paths(state_dir=str(root / "state"), log_dir=str(root / "log"),
                    code_dir=str(root / "code"), secrets_file=str(root / "secrets.env"),
                    trainer_user="no-such-trainer-user"),
        api_url=api_url, container=ContainerSpec(upload_retry_s=0.05, upload_retry_max_s=0.1,
                                                 upload_reserve_s=0.0))
    fields.update(changes)
    return RunSpec(**fields)


def vast_context(spec: RunSpec, env: dict[str, str] | None = None) -> Context:
    secrets = container_secrets()
    reporter = Reporter(spec.run_id, spec.paths.state_dir, spec.paths.log_dir,
                        scrub=lambda text: scrub(text, secrets))
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CONTAINER_ID": INSTANCE_ID}
    return Context(spec=spec, secrets=secrets, reporter=reporter,
                   base_env=base if env is None else env)


@pytest.fixture
def stub() -> Iterator[StubVast]:
    server = StubVast(instances={INSTANCE_ID}).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ctx(tmp_path: Path, stub: StubVast) -> Context:
    return vast_context(vast_spec(tmp_path, stub.url))


def respec(ctx: Context, **changes) -> Context:
    ctx.spec = replace(ctx.spec, **changes)
    return ctx
