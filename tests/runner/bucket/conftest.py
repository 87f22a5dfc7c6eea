"""Fixtures for the bucket phases: a runner Context whose paths all live in the test's temp
dir, pointed at the session's S3 server and a fresh bucket (both from ``tests/runner/conftest.py``).
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import pytest
from support.keys import FAKE_B2_APP_KEY, FAKE_B2_KEY_ID

from launcher.runner.context import Context
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
from runner.conftest import (  # noqa: F401 - re-exported for the tests in this folder
    READER_ID,
    READER_SECRET,
    S3Server,
    listing,
    put,
)

SECRETS = RunSecrets({"B2_KEY_ID": FAKE_B2_KEY_ID, "B2_APP_KEY": FAKE_B2_APP_KEY})


def make_context(tmp: Path, server: S3Server, bucket: str, *, secrets: RunSecrets = SECRETS,
                 data_prefix: str = "datasets/v1", code: CodeSource | None = None,
                 **spec_changes) -> Context:
    """A Context for run ``r-test`` whose every path is under ``tmp``."""
    paths = Paths(state_dir=str(tmp / "state"), log_dir=str(tmp / "log"),
                  code_dir=str(tmp / "opt" / "code"), secrets_file=str(tmp / "secrets.env"))
    spec = RunSpec(
        run_id="r-test", stage="diffusion", command=("python3", "train.py", "--epochs", "1"),
        code=code or CodeSource(),
        storage=Storage(server.endpoint, bucket, data_prefix, region="us-east-1"),
        volume=VolumeSpec(block_id="blk-1", mount_id="mnt-1", mount_point=str(tmp / "mnt")),
        deadline_epoch=time.time() + 3600, paths=paths)
    spec = replace(spec, **spec_changes)
    (tmp / "mnt").mkdir(exist_ok=True)
    reporter = Reporter(spec.run_id, paths.state_dir, paths.log_dir,
                        scrub=lambda text: scrub(text, secrets))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["LAUNCHER_S5CMD"] = server.s5cmd
    return Context(spec, secrets, reporter, base_env=env, sleep=lambda seconds: None)


@pytest.fixture
def ctx(tmp_path: Path, s3_server: S3Server, bucket: str) -> Context:
    return make_context(tmp_path, s3_server, bucket)


def secret_free(*texts: str) -> bool:
    return not any(k in t for t in texts for k in (FAKE_B2_KEY_ID, FAKE_B2_APP_KEY))
