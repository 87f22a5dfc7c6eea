"""Fixtures for the document renderer's tests: specs, the suite's fake secrets, runners, and
the two validators (the project's schema and Debian's ``cloud-init schema``)."""

from __future__ import annotations

import dataclasses
import io
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from support.keys import FAKE_B2_APP_KEY, FAKE_B2_KEY_ID, FAKE_VULTR_KEY, FAKE_WANDB_KEY
from support.need import need

from launcher.render import RenderedDocument, build_runner_zipapp
from launcher.render.serialise import load_cloud_config
from launcher.runner.spec import (
    CodeSource,
    HealthSpec,
    RunSecrets,
    RunSpec,
    Storage,
    VolumeSpec,
)
from launcher.secrets import redact

# Debian's cloud-init 22.4.2 (what CI installs). The newest upstream schema is not available
# offline, so it is not checked; the project's stricter schema covers what 22.4.2 misses.
CLOUD_INIT = Path("/usr/bin/cloud-init")
FAKE_SECRETS = {"VULTR_KEY": FAKE_VULTR_KEY, "B2_KEY_ID": FAKE_B2_KEY_ID,
                "B2_APP_KEY": FAKE_B2_APP_KEY, "WANDB_API_KEY": FAKE_WANDB_KEY}
FIXED_RUNCMD = [["systemctl", "daemon-reload"],
                ["systemctl", "enable", "--now", "launcher-watchdog.timer"],
                ["systemctl", "start", "--no-block", "launcher-runner.service"]]


def make_spec(**changes) -> RunSpec:
    """A realistic GPU run spec; ``changes`` replace top-level fields."""
    spec = RunSpec(
        run_id="diffusion-20250101-000000", stage="diffusion",
        command=("python", "-m", "train.diffusion", "--config", "configs/train.yaml"),
        code=CodeSource(kind="tarball", tarball_key="runs/diffusion-20250101-000000/code.tar.gz",
                        sha256="ab" * 32),
        storage=Storage(endpoint_url="https://s3.us-west-004.backblazeb2.com",
                        bucket="my-bucket", data_prefix="datasets/diffusion",
                        region="us-west-004"),
        volume=VolumeSpec(block_id="0a1b2c3d-0000-4000-8000-000000000001",
                          mount_id="abcdef0123456789abcd"),
        deadline_epoch=1_735_732_800.0,
        health=HealthSpec(min_vram_gb=80),
    )
    return dataclasses.replace(spec, **changes)


def fake_secrets() -> RunSecrets:
    return RunSecrets(dict(FAKE_SECRETS))


def tiny_runner() -> bytes:
    """A minimal zipapp: small enough to travel as plain base64."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("__main__.py", "print('tiny runner')\n")
    return buffer.getvalue()


def large_runner() -> bytes:
    """A big but compressible runner (the real one padded with source-like text)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("__main__.py", "print('large runner')\n")
        for n in range(40):
            archive.writestr(f"pkg/module_{n:02d}.py",
                             "".join(f"def f_{n}_{i}(x):\n    return x + {i}\n"
                                     for i in range(120)))
    return buffer.getvalue()


@pytest.fixture(scope="session")
def runner_bytes() -> bytes:
    return build_runner_zipapp()


@pytest.fixture
def secrets() -> RunSecrets:
    return fake_secrets()


def parsed(document: RenderedDocument) -> dict:
    return load_cloud_config(document.text)


def files_by_path(document: RenderedDocument) -> dict[str, dict]:
    return {entry["path"]: entry for entry in parsed(document)["write_files"]}


@pytest.fixture
def cloud_init_schema(tmp_path: Path) -> Callable[[str], None]:
    """Check document text with Debian's ``cloud-init schema --config-file``."""
    need(CLOUD_INIT.exists() and shutil.which(str(CLOUD_INIT)) is not None,
         f"{CLOUD_INIT} is absent: install Debian's cloud-init package "
                    "(CI does) to check documents with cloud-init's own schema")

    def check(text: str) -> None:
        path = tmp_path / "user-data.yaml"
        path.write_text(text, encoding="ascii")
        result = subprocess.run([str(CLOUD_INIT), "schema", "--config-file", str(path)],
                                capture_output=True, text=True, timeout=60, check=False)
        output = redact(result.stdout + result.stderr, *FAKE_SECRETS.values())
        assert result.returncode == 0, f"cloud-init schema refused the document:\n{output}"
        assert "Valid cloud-config" in output

    return check
