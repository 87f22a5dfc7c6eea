"""Fixtures for ``launcher run``: the emulator, SeaweedFS, a temp config dir, a tiny git
checkout, and :class:`LaunchDeps` with fast clients and a manual clock.

The stage's ``storage.endpoint_url`` must be https (the config schema), so the tests point
the *bucket factory* at SeaweedFS (plain http on 127.0.0.1) instead of ``B2_S3_ENDPOINT``;
``B2_BUCKET`` and the B2 keys do come from the account as in a real launch.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import client_for
from runner.conftest import S3Server, bucket, listing, s3_server  # noqa: F401 - fixtures
from support.keys import FAKE_B2_APP_KEY, FAKE_B2_KEY_ID, FAKE_VULTR_KEY, FAKE_WANDB_KEY

from launcher.bucket import Bucket, BucketAddress, ObjectStat
from launcher.config import Account, StorageConfig, load_account, run_secrets
from launcher.emulator import Emulator, ManualClock
from launcher.providers.vultr import VultrProvider
from launcher.provision import LaunchDeps, LaunchRequest, RecordingProgress
from launcher.vultr import VultrClient

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_795_000_000.0  # 2026-11-18, wall clock of every test launch


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com",
                           "-c", "commit.gpgsign=false", *args], cwd=cwd, check=True,
                          capture_output=True, text=True)
    return done.stdout.strip()


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    """A git checkout with one commit: train.py and a README."""
    repo = tmp_path / "code"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "train.py").write_text("print('training')\n")
    (repo / "README.md").write_text("tiny\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "first")
    return repo


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    target = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", target)
    return target


def account_for(emulator: Emulator, bucket_name: str, tmp: Path, **extra: str) -> Account:
    env_file = tmp / "empty.env"
    env_file.write_text("")
    environ = {"VULTR_API_URL": emulator.url, "VULTR_KEY": FAKE_VULTR_KEY,
               "B2_BUCKET": bucket_name, "B2_APPLICATION_KEY_ID": FAKE_B2_KEY_ID,
               "B2_APPLICATION_KEY": FAKE_B2_APP_KEY, "WANDB_API_KEY": FAKE_WANDB_KEY, **extra}
    environ = {k: v for k, v in environ.items() if v}
    return load_account(environ, env_file)


def bucket_at(endpoint: str, account: Account) -> Callable[[StorageConfig], Bucket]:
    def make(storage: StorageConfig) -> Bucket:
        return Bucket(BucketAddress(endpoint, storage.bucket, storage.runs_prefix),
                      run_secrets(account))

    return make


class MemoryBucket:
    """An in-memory bucket for the tests that are about Vultr, not about B2: url -> bytes."""

    def __init__(self, address: BucketAddress) -> None:
        self.address = address
        self.objects: dict[str, bytes] = {}

    def put_file(self, local: Path, url: str) -> None:
        self.objects[url] = local.read_bytes()

    def stat(self, url: str) -> ObjectStat | None:
        data = self.objects.get(url)
        return None if data is None else ObjectStat(url, len(data), 0.0, "")

    def read_json(self, url: str) -> dict:
        return json.loads(self.objects[url])


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Bed:
    """One test's launch ground (``s3`` is None for a quick bed: in-memory bucket)."""

    emulator: Emulator
    s3: S3Server | None
    bucket: str
    config_dir: Path
    code_dir: Path
    tmp: Path
    clock: ManualClock

    def deps(self, *, client: VultrClient | None = None, endpoint: str | None = None,
             confirm: Callable = lambda plan: True, account: Account | None = None,
             **changes) -> LaunchDeps:
        account = account or account_for(self.emulator, self.bucket, self.tmp)
        client = client or client_for(self.emulator.url)
        if self.s3 is None and endpoint is None:
            buckets: dict[str, MemoryBucket] = {}

            def bucket_for(storage):
                address = BucketAddress(self.emulator.url.removesuffix("/v2"), storage.bucket)
                return buckets.setdefault(storage.bucket, MemoryBucket(address))
        else:
            bucket_for = bucket_at(endpoint or self.s3.endpoint, account)
        return LaunchDeps(account=account, provider=VultrProvider(client),
                          bucket_for=bucket_for,
                          confirm=confirm, progress=RecordingProgress(),
                          now=lambda: NOW, monotonic=self.clock, sleep=self.clock.advance,
                          **changes)

    def request(self, stage: str = "smoke", **changes) -> LaunchRequest:
        values = {"config_dir": self.config_dir, "code_dir": self.code_dir, **changes}
        return LaunchRequest(stage=stage, **values)

    def objects(self) -> dict[str, int]:
        assert self.s3 is not None, "a quick bed has no S3 server"
        return listing(self.s3, self.bucket)

    def left(self) -> tuple[list[str], list[str]]:
        """Instance ids and block ids the emulator still holds."""
        state = self.emulator.state
        return sorted(state.instances), sorted(state.blocks)


@pytest.fixture
def make_bed(make_emulator, s3_server, bucket, config_dir, code_dir,  # noqa: F811
             tmp_path) -> Callable[..., Bed]:
    """A Bed whose emulator takes ``options``; one clock drives the emulator (when it is
    given ``clock=``) and the launch's retries."""

    def make(**options) -> Bed:
        clock = options.get("clock") or ManualClock()
        return Bed(make_emulator(**options), s3_server, bucket, config_dir, code_dir,
                   tmp_path, clock)

    return make


@pytest.fixture
def bed(make_bed) -> Bed:
    return make_bed()


@pytest.fixture
def quick_bed(make_emulator, config_dir, code_dir, tmp_path) -> Bed:
    """A bed without SeaweedFS: the code bundle goes to an in-memory bucket (whose endpoint
    is the emulator's, so the reachability check passes)."""
    return Bed(make_emulator(), None, "t-memory", config_dir, code_dir, tmp_path,
               ManualClock())
