"""The training repository for real: its snapshot unpacked, its CPU environment, its data.

``../shared/ups/universal_simulator-*.tar.gz`` (emgun/universal_simulator, "UPS") is
unpacked once per session; its scripts run in ``.venv-ups`` (``make ups-env``: torch's CPU
build and the dependencies its scripts import). Without either, the tests skip with the
reason, and fail under ``CI=true``. The S3 server and buckets are the runner tests'.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from runner.conftest import bucket, put, s3_server  # noqa: F401 - fixtures for tests/ups
from support.need import need

REPO_ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTS = REPO_ROOT.parent / "shared" / "ups"
UPS_VENV = Path(os.environ.get("UPS_VENV", REPO_ROOT / ".venv-ups"))
UPS_PYTHON = UPS_VENV / "bin" / "python"
HERE = Path(__file__).parent
# A test-only sitecustomize: records what UPS passes to wandb.init, then logs offline (no
# W&B server here). Nothing of UPS is changed; wandb.init is wrapped in the process only.
SITECUSTOMIZE = '''
import json, os
import wandb
_init = wandb.init
def init(*args, **kwargs):
    with open(os.environ["UPS_TEST_WANDB_CALLS"], "a") as out:
        out.write(json.dumps({k: v for k, v in kwargs.items() if k != "config"}) + "\\n")
    return _init(*args, **{**kwargs, "mode": "offline"})
wandb.init = init
'''


@pytest.fixture(scope="session")
def ups_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The unpacked snapshot's top folder (read-only copy: tests copy what they change)."""
    found = sorted(SNAPSHOTS.glob("universal_simulator-*.tar.gz"))
    need(bool(found), f"no training repository snapshot in {SNAPSHOTS}")
    need(UPS_PYTHON.is_file(), f"{UPS_PYTHON} missing: run make ups-env")
    target = tmp_path_factory.mktemp("ups")
    with tarfile.open(found[-1]) as archive:
        archive.extractall(target, filter="data")
    return target / "universal_simulator"


@pytest.fixture(scope="session")
def tiny_splits(tmp_path_factory: pytest.TempPathFactory, ups_snapshot: Path) -> Path:
    """A folder of tiny burgers1d splits in UPS's HDF5 layout (train as its _000 shard)."""
    out = tmp_path_factory.mktemp("tiny-burgers")
    subprocess.run([str(UPS_PYTHON), str(HERE / "tiny_burgers.py"), str(out)], check=True,
                   timeout=120)
    return out


@pytest.fixture
def ups_bucket(s3_server, bucket, tiny_splits, tmp_path) -> str:  # noqa: F811
    """A bucket laid out as UPS's (scripts/setup_vast_data.sh, the config's data.download)."""
    keys = {"full/burgers1d/burgers1d_train_000.h5": "burgers1d_train_000.h5",
            "pdebench/burgers1d_full_v1/burgers1d_val.h5": "burgers1d_val.h5",
            "pdebench/burgers1d_full_v1/burgers1d_test.h5": "burgers1d_test.h5"}
    for key, name in keys.items():
        put(s3_server, bucket, key, (tiny_splits / name).read_bytes(), tmp_path)
    return bucket


@pytest.fixture
def wandb_shim(tmp_path: Path) -> tuple[Path, Path]:
    """(folder to put on PYTHONPATH, the JSON-lines file of wandb.init calls)."""
    shim = tmp_path / "wandb-shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return shim, tmp_path / "wandb-init-calls.jsonl"


def wandb_calls(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
