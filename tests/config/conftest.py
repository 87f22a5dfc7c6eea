"""Fixtures for the configuration's tests: a breakable copy of configs/, a working directory
without a .env file, and the suite's fake keys under the launcher's variable names."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.keys import FAKE_B2_APP_KEY, FAKE_B2_KEY_ID, FAKE_VULTR_KEY, FAKE_WANDB_KEY

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
# The launcher's variables -> the suite's fake keys (never printed: the suite fails on them).
FAKE_ACCOUNT = {"VULTR_KEY": FAKE_VULTR_KEY, "B2_APPLICATION_KEY_ID": FAKE_B2_KEY_ID,
                "B2_APPLICATION_KEY": FAKE_B2_APP_KEY, "WANDB_API_KEY": FAKE_WANDB_KEY}


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A copy of the shipped configs to break."""
    target = tmp_path / "configs"
    shutil.copytree(CONFIGS, target, ignore=shutil.ignore_patterns("schema"))
    return target


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, with the default .env lookup (./.env) in force."""
    cwd = tmp_path / "work"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("LAUNCHER_ENV_FILE", raising=False)
    monkeypatch.delenv("LAUNCHER_CONFIG_DIR", raising=False)
    return cwd


def write_stage(config_dir: Path, name: str, text: str) -> Path:
    path = config_dir / "stages" / f"{name}.yaml"
    path.write_text(text)
    return path
