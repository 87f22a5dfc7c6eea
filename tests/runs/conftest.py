"""Runs made by hand: tagged instances and volumes in the emulator, and a bucket (SeaweedFS)
that the runner's own code fills.

``publish_*`` never write status.json by hand: they run the runner's ``Reporter``, its
``upload_heartbeat`` and, for a finished run, its real ``supervise`` with no-op phases and the
real ``upload`` — so the files these tests read are exactly what an instance would leave.
"""

from __future__ import annotations

import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from conftest import client_for
from runner import conftest as s3_fixtures
from runner.bucket.conftest import SECRETS, make_context
from support.keys import FAKE_B2_APP_KEY, FAKE_B2_KEY_ID, FAKE_VULTR_KEY

from launcher.bucket import Bucket, BucketAddress
from launcher.commands import runcommon
from launcher.naming import instance_tags, reusable_volume_label, volume_label
from launcher.providers import InstanceRequest, VolumeRequest
from launcher.providers.vultr import VultrProvider
from launcher.runner import upload as runner_upload
from launcher.runner.context import Context
from launcher.runner.spec import ClusterSpec
from launcher.runner.supervisor import Phases, real_upload, supervise
from launcher.vultr import BlockSpec, InstanceSpec

SNAPSHOT_ID = "5f0d2c1e-8a3b-4c6d-9e7f-0a1b2c3d4e5f"
PLAN = "vcg-a100-12c-120g-80vram"
REGION = "sea"
RUN = "diffusion-20261129-100000"
OTHER = "operator-20261129-110000"

# The SeaweedFS server of tests/runner, registered here too.
s3_server = s3_fixtures.s3_server
WARM_BATCH = 8
NO_USER = "launcher-runs-tests-nobody"
TRAIN_LOG = "epoch 1 loss 0.9\nepoch 2 loss 0.5\ndone\n"
KEPT_VOLUME = ("volume blk-1 kept: upload not verified — recover its data, then delete it: "
               'curl -X DELETE -H "Authorization: Bearer $VULTR_KEY" '
               "https://api.vultr.com/v2/blocks/blk-1")


@dataclass
class Made:
    """One run's resources as created in the emulator."""

    run_id: str
    instance_id: str | None
    volume_id: str | None


@pytest.fixture(scope="session")
def warm_buckets(s3_server, tmp_path_factory):
    """Fresh buckets that already hold one object: SeaweedFS allocates a bucket's storage on
    its first write (up to a second each), so they are made and written in parallel
    batches. ``take()`` hands out one never used before."""
    ready: list[str] = []
    scratch = tmp_path_factory.mktemp("warm")
    (scratch / "warm").write_bytes(b"warm\n")

    def make(_: int) -> str:
        name = f"t-{uuid.uuid4().hex[:12]}"
        s3_server.s5("mb", f"s3://{name}")
        s3_server.s5("cp", str(scratch / "warm"), f"s3://{name}/warm")
        return name

    def take() -> str:
        if not ready:
            with ThreadPoolExecutor(WARM_BATCH) as pool:
                ready.extend(pool.map(make, range(WARM_BATCH)))
        return ready.pop()

    return take


@pytest.fixture
def bucket(warm_buckets) -> str:
    """A bucket of this test's own, with nothing under ``runs/``."""
    return warm_buckets()


@pytest.fixture
def provider(client) -> VultrProvider:
    return VultrProvider(client)


@pytest.fixture
def address(s3_server, bucket) -> BucketAddress:
    return BucketAddress(s3_server.endpoint, bucket)


@pytest.fixture
def store(address) -> Bucket:
    return Bucket(address, SECRETS)


def make_run(provider: VultrProvider, run_id: str = RUN, *, stage: str = "",
             expires: float | None = None, instance: bool = True, volume: bool = True,
             attach: bool = True) -> Made:
    """A run as ``launcher run`` leaves it: a volume labelled for it, an instance with its
    tags, the volume attached live."""
    vol = provider.create_volume(VolumeRequest(REGION, 50, volume_label(run_id))) \
        if volume else None
    inst = None
    if instance:
        expires = time.time() + 3600 if expires is None else expires
        stage = stage or run_id.rsplit("-", 2)[0]
        inst = provider.create_instance(InstanceRequest(
            REGION, PLAN, SNAPSHOT_ID, run_id, instance_tags(run_id, stage, expires),
            user_data=b"#cloud-config\n{}\n"))
        if vol and attach:
            provider.attach_volume(vol.id, inst.id, deadline_s=10)
    return Made(run_id, inst.id if inst else None, vol.id if vol else None)


def reusable_volume(client) -> str:
    return client.create_block(BlockSpec(REGION, 40, reusable_volume_label("ups"))).id


def foreign_resources(client) -> tuple[str, str]:
    """An instance and a volume that are not the launcher's (no tag, no run label)."""
    inst = client.create_instance(InstanceSpec(REGION, PLAN, "web-1", snapshot_id=SNAPSHOT_ID,
                                               tags=("web",)))
    vol = client.create_block(BlockSpec(REGION, 30, "database-disk"))
    return inst.id, vol.id


def runner_context(tmp: Path, s3_server, bucket: str, run_id: str,
                   cluster: ClusterSpec | None = None) -> Context:
    """``cluster``: the runner of that node of an N-node run (it writes under
    ``nodes/<k>/``)."""
    (tmp / run_id).mkdir(parents=True, exist_ok=True)
    ctx = make_context(tmp / run_id, s3_server, bucket, run_id=run_id, cluster=cluster)
    # Nobody's processes: the supervisor stops every process of the trainer user.
    ctx.spec = replace(ctx.spec, paths=replace(ctx.spec.paths, trainer_user=NO_USER))
    return ctx


def publish_running(tmp: Path, s3_server, bucket: str, run_id: str = RUN,
                    train_log: str = "epoch 1 loss 0.9\n",
                    cluster: ClusterSpec | None = None) -> Context:
    """A run in its train phase, as its heartbeat uploads it (status.json + log tails)."""
    ctx = runner_context(tmp, s3_server, bucket, run_id, cluster)
    for name in ("harden", "volume", "code", "data", "health"):
        with ctx.reporter.phase(name):
            pass
    with ctx.reporter.phase("train"):
        write_train_log(ctx, train_log)
        assert runner_upload.upload_heartbeat(ctx)
    return ctx


def write_train_log(ctx: Context, text: str, *, append: bool = False) -> None:
    path = Path(ctx.spec.paths.log_dir) / "train.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a" if append else "w", encoding="utf-8") as handle:
        handle.write(text)


def publish_finished(tmp: Path, s3_server, bucket: str, run_id: str = RUN, *,
                     exit_code: int = 0, verified: bool = True,
                     left_behind: tuple[str, ...] | None = None,
                     cluster: ClusterSpec | None = None) -> Context:
    """A finished run, through the runner's own supervisor: no-op phases, a training that
    exits ``exit_code``, the real upload (made to fail verification unless ``verified``),
    and a teardown that does what the real one does for the bucket: names what it left
    (by default, without a verified upload, the kept volume) and uploads the status last."""
    ctx = runner_context(tmp, s3_server, bucket, run_id, cluster)
    if left_behind is None:
        left_behind = () if verified else (KEPT_VOLUME,)

    def train(ctx: Context, code_dir: Path, heartbeat) -> int:
        write_train_log(ctx, TRAIN_LOG)
        return exit_code

    def upload(ctx: Context, outcome):
        result = real_upload(ctx, outcome)
        if verified:
            return result
        return runner_upload.UploadResult(False, result.objects, result.bytes,
                                          ("missing runs/x/checkpoints/last.pt",))

    def teardown(ctx: Context, upload_verified: bool) -> list[str]:
        for line in left_behind:
            ctx.reporter.left_behind(line)
        runner_upload.upload_heartbeat(ctx)  # teardown's final status upload
        return list(left_behind)

    phases = Phases(harden=lambda c: None, prepare_volume=lambda c: None,
                    fetch_code=lambda c: Path(c.spec.paths.code_dir),
                    sync_data=lambda c: None, check_health=lambda c, m: None, train=train,
                    upload=upload, upload_heartbeat=runner_upload.upload_heartbeat,
                    teardown=teardown)
    supervise(ctx, phases, signals=False, heartbeat_s=3600)
    return ctx


# The variants the tests use; made together (in parallel) the first time any is asked for.
STANDARD_VARIANTS = (("running", RUN, ()), ("finished", RUN, ()),
                     ("finished", OTHER, (("verified", False),)))


@pytest.fixture(scope="session")
def runner_output(s3_server, tmp_path_factory):
    """``get(kind, run_id, **options)``: a local folder with what the runner leaves under
    ``runs/<run_id>/`` for ``publish_<kind>`` (running / finished). Each variant is made once
    per session, by the runner's own code in a prefix of its own, and downloaded."""
    made: dict[tuple, Path] = {}
    root = tmp_path_factory.mktemp("runner-output")

    def make(key: tuple) -> Path:
        kind, run_id, options = key
        work = root / uuid.uuid4().hex[:8]
        scratch = f"t-out-{work.name}"
        s3_server.s5("mb", f"s3://{scratch}")
        maker = {"running": publish_running, "finished": publish_finished}[kind]
        maker(work, s3_server, scratch, run_id, **dict(options))
        s3_server.s5("cp", f"s3://{scratch}/runs/{run_id}/*", f"{work / 'files'}/")
        return work / "files"

    def get(kind: str, run_id: str = RUN, **options) -> Path:
        key = (kind, run_id, tuple(sorted(options.items())))
        if not made:
            with ThreadPoolExecutor(len(STANDARD_VARIANTS)) as pool:
                made.update(zip(STANDARD_VARIANTS, pool.map(make, STANDARD_VARIANTS),
                                strict=True))
        if key not in made:
            made[key] = make(key)
        return made[key]

    return get


@pytest.fixture
def publish(runner_output, s3_server, bucket):
    """``publish(kind, run_id=RUN, **options)``: put a run's runner-made files in this test's
    bucket (one s5cmd call); returns the folder they came from."""
    def place(kind: str, run_id: str = RUN, *, made_as: str | None = None,
              **options) -> Path:
        """``made_as``: reuse the files made for that run id (their inner run_id is its;
        nothing the commands do reads it) instead of making a new variant."""
        folder = runner_output(kind, made_as or run_id, **options)
        s3_server.s5("cp", f"{folder}/*", f"s3://{bucket}/runs/{run_id}/")
        return folder

    return place


@pytest.fixture
def publish_all(runner_output, s3_server, bucket, tmp_path):
    """``publish_all({run_id: (kind, made_as, options)})`` in one s5cmd call."""
    def place(runs: dict[str, tuple[str, str, dict]]) -> None:
        staging = tmp_path / "publish-all"
        for run_id, (kind, made_as, options) in runs.items():
            shutil.copytree(runner_output(kind, made_as, **options), staging / run_id)
        s3_server.s5("cp", f"{staging}/*", f"s3://{bucket}/runs/")

    return place


def bucket_env(monkeypatch, tmp_path, address) -> None:
    """The CLI run from an empty directory (no .env, no configs: everything from the
    environment, as on a fresh machine), pointed at the bucket."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "220")  # rich tables wide enough not to wrap ids
    monkeypatch.setenv("B2_BUCKET", address.bucket)
    monkeypatch.setenv("B2_S3_ENDPOINT", address.endpoint_url)
    monkeypatch.setenv("B2_APPLICATION_KEY_ID", FAKE_B2_KEY_ID)
    monkeypatch.setenv("B2_APPLICATION_KEY", FAKE_B2_APP_KEY)


@pytest.fixture
def cli_env(monkeypatch, tmp_path, emulator, address):
    """The CLI pointed at the emulator and the bucket (``bucket_env``), with a fast client."""
    bucket_env(monkeypatch, tmp_path, address)
    monkeypatch.setenv("VULTR_API_URL", emulator.url)
    monkeypatch.setenv("VULTR_KEY", FAKE_VULTR_KEY)

    def fast_client(account):
        return client_for(account.vultr_api_url, account.vultr_key.reveal() or None)

    monkeypatch.setattr(runcommon, "vultr_client", fast_client)
    return emulator
