"""The upload phase and the heartbeat, against a real S3 server."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from launcher.runner import upload
from launcher.runner.data import Manifest
from launcher.runner.s3 import MASTER_KEY_HINT
from launcher.runner.spec import RunSecrets

from .conftest import READER_ID, READER_SECRET, listing, make_context, secret_free

OUTCOME = upload.RunOutcome(exit_code=0, reason="finished",
                            dataset=Manifest(3, 3015, "s3://b/datasets/v1/", 3, 0))


@pytest.fixture(scope="module")
def shared_bucket(s3_server) -> str:
    """One bucket for this module's runs (each test its own run id): SeaweedFS makes the
    first concurrent writes to a new bucket wait about a second."""
    name = f"up-{uuid.uuid4().hex[:12]}"
    s3_server.s5("mb", f"s3://{name}")
    return name


@pytest.fixture
def ctx(tmp_path, s3_server, shared_bucket):
    return make_context(tmp_path, s3_server, shared_bucket, run_id=f"r-{uuid.uuid4().hex[:10]}")


def remote(server, ctx) -> dict[str, int]:
    """``{key relative to the run prefix: size}``."""
    found = listing(server, ctx.spec.storage.bucket, ctx.spec.run_prefix + "/")
    return {key.split("/", 2)[2]: size for key, size in found.items()}


def outputs(ctx) -> None:
    """What a finished run leaves: checkpoints, reports, logs, a status file."""
    ckpt = ctx.mount / "checkpoints"
    (ckpt / "epoch-1").mkdir(parents=True)
    (ckpt / "epoch-1" / "model.pt").write_bytes(b"w" * 70_000)
    (ckpt / "last.pt").write_bytes(b"l" * 10)
    (ckpt / "empty.txt").write_bytes(b"")
    os.symlink(ctx.spec.paths.secrets_file, ckpt / "sneaky")  # must never be followed
    Path(ctx.spec.paths.secrets_file).write_text("B2_APP_KEY=root-only\n")
    os.mkfifo(ckpt / "pipe")
    (ctx.mount / "reports").mkdir()
    (ctx.mount / "reports" / "eval.json").write_text('{"fid": 3.1}')
    (Path(ctx.spec.paths.log_dir) / "train.log").write_text("step 1 loss 0.5\n")
    with ctx.reporter.phase("train") as record:
        record.detail = "exit 0"


def test_upload_sends_everything_and_verifies_it(ctx, s3_server):
    outputs(ctx)
    result = upload.upload(ctx, OUTCOME)
    assert result.verified, result.problems
    found = remote(s3_server, ctx)
    assert {"checkpoints/epoch-1/model.pt", "checkpoints/last.pt", "checkpoints/empty.txt",
            "reports/eval.json", "logs/train.log", "logs/runner.log", "manifest.json",
            "status.json"} == set(found)
    assert found["checkpoints/epoch-1/model.pt"] == 70_000
    assert result.objects == len(found) and result.bytes == sum(found.values())


def test_the_manifest_says_what_ran(ctx, s3_server, tmp_path):
    outputs(ctx)
    assert upload.upload(ctx, OUTCOME).verified
    got = tmp_path / "manifest.json"
    s3_server.s5("cp", f"s3://{ctx.spec.storage.bucket}/{ctx.spec.run_prefix}/manifest.json",
                 str(got))
    manifest = json.loads(got.read_text())
    assert manifest["run_id"] == ctx.spec.run_id and manifest["stage"] == "diffusion"
    assert manifest["command"] == ["python3", "train.py", "--epochs", "1"]
    assert manifest["exit_code"] == 0 and manifest["dataset"]["files"] == 3
    assert manifest["code"]["kind"] == "tarball" and manifest["placement"]["provider"] == "vultr"
    assert [p["name"] for p in manifest["phases"]] == ["train"]
    assert manifest["started"] and manifest["ended"] >= manifest["started"]
    assert secret_free(got.read_text())


def test_a_second_upload_is_idempotent(ctx):
    outputs(ctx)
    assert upload.upload(ctx, OUTCOME).verified
    assert upload.upload(ctx, OUTCOME).verified


def test_a_missing_bucket_is_not_verified_and_does_not_raise(tmp_path, s3_server):
    ctx = make_context(tmp_path, s3_server, "no-such-bucket-here")
    outputs(ctx)
    result = upload.upload(ctx, upload.RunOutcome(exit_code=1, reason="oom"))
    assert not result.verified and result.problems
    assert any("404" in p for p in result.problems)
    assert result.objects > 0
    log = Path(ctx.spec.paths.log_dir, "runner.log").read_text()
    assert "NOT verified" in log and secret_free(log, *result.problems)


def test_a_read_only_key_is_not_verified_scrubbed_and_hinted(tmp_path, s3_server, shared_bucket):
    reader = RunSecrets({"B2_KEY_ID": READER_ID, "B2_APP_KEY": READER_SECRET})
    ctx = make_context(tmp_path, s3_server, shared_bucket, secrets=reader)
    outputs(ctx)
    result = upload.upload(ctx, OUTCOME)
    assert not result.verified
    text = " ".join(result.problems)
    assert "AccessDenied" in text and MASTER_KEY_HINT in text
    assert READER_SECRET not in text and READER_SECRET not in Path(
        ctx.spec.paths.log_dir, "runner.log").read_text()


def test_an_unsafe_upload_dir_is_a_problem_not_an_escape(tmp_path, s3_server, shared_bucket):
    ctx = make_context(tmp_path, s3_server, shared_bucket, run_id="r-unsafe-dir",
                       upload_dirs=("../state", "checkpoints"))
    outputs(ctx)
    result = upload.upload(ctx, OUTCOME)
    assert not result.verified
    assert result.problems == ("upload_dirs entry '../state' is not a plain folder name",)


def test_heartbeat_sends_status_and_logs(ctx, s3_server):
    assert upload.upload_heartbeat(ctx)  # nothing to send yet is no failure
    assert remote(s3_server, ctx) == {}
    ctx.reporter.note("training started")  # writes runner.log and status.json
    assert upload.upload_heartbeat(ctx)
    (Path(ctx.spec.paths.log_dir) / "train.log").write_text("step 7\n")
    assert upload.upload_heartbeat(ctx)
    found = remote(s3_server, ctx)
    assert set(found) == {"status.json", "logs/runner.log", "logs/train.log"}
    assert found["logs/train.log"] == len("step 7\n")


def test_heartbeat_sends_only_the_tail_of_a_long_log(ctx, s3_server, monkeypatch, tmp_path):
    monkeypatch.setattr(upload, "HEARTBEAT_LOG_BYTES", 10)
    (Path(ctx.spec.paths.log_dir) / "train.log").write_text("0123456789" * 5 + "last line\n")
    assert upload.upload_heartbeat(ctx)
    got = tmp_path / "got.log"
    s3_server.s5("cp", f"s3://{ctx.spec.storage.bucket}/{ctx.spec.run_prefix}/logs/train.log",
                 str(got))
    assert got.read_text() == "last line\n"
    assert not [p for p in Path(ctx.spec.paths.state_dir).iterdir() if p.is_dir()]


def test_a_failing_heartbeat_is_logged_not_raised(tmp_path, s3_server):
    ctx = make_context(tmp_path, s3_server, "no-such-bucket-here")
    ctx.reporter.note("training started")
    assert upload.upload_heartbeat(ctx) is False
    log = Path(ctx.spec.paths.log_dir, "runner.log").read_text()
    assert "heartbeat upload failed" in log and secret_free(log)


def test_everything_written_locally_is_secret_free(ctx):
    outputs(ctx)
    upload.upload(ctx, OUTCOME)
    upload.upload_heartbeat(ctx)
    for path in Path(ctx.spec.paths.state_dir).rglob("*"):
        if path.is_file():
            assert secret_free(path.read_text()), path
    assert secret_free(Path(ctx.spec.paths.log_dir, "runner.log").read_text())


def test_logs_are_scrubbed_before_they_go_up(ctx, s3_server, tmp_path):
    """The trainer holds the W&B key and may print it (a traceback, an env dump): the
    uploaded logs, whole or as a heartbeat tail, never carry a secret."""
    leaked = ctx.secrets.all_values()
    assert leaked, "the context must hold secrets for this test to mean anything"
    log = Path(ctx.spec.paths.log_dir) / "train.log"
    log.write_text("".join(f"env dump: KEY={value} tail\n" for value in leaked))
    assert upload.upload_heartbeat(ctx)
    heartbeat = tmp_path / "heartbeat.log"
    key = f"s3://{ctx.spec.storage.bucket}/{ctx.spec.run_prefix}/logs/train.log"
    s3_server.s5("cp", key, str(heartbeat))
    assert upload.upload(ctx, OUTCOME).verified
    final = tmp_path / "final.log"
    s3_server.s5("cp", key, str(final))
    for got in (heartbeat, final):
        text = got.read_text()
        assert text.count("KEY=*** tail") == len(leaked)
        assert secret_free(text)


def test_the_final_status_never_replaces_the_whole_train_log_with_a_tail(ctx, s3_server,
                                                                          monkeypatch, tmp_path):
    monkeypatch.setattr(upload, "HEARTBEAT_LOG_BYTES", 10)
    train_log = Path(ctx.spec.paths.log_dir) / "train.log"
    train_log.write_text("step 1\n" * 20)
    assert upload.upload(ctx, OUTCOME).verified
    ctx.reporter.note("teardown: deleting instance")
    assert upload.upload_final_status(ctx)
    found = remote(s3_server, ctx)
    assert found["logs/train.log"] == len("step 1\n" * 20)  # still whole
    got = tmp_path / "status.json"
    s3_server.s5("cp", f"s3://{ctx.spec.storage.bucket}/{ctx.spec.run_prefix}/status.json",
                 str(got))
    assert "teardown: deleting instance" in got.read_text()


class _LateListing:
    """An S3 tool whose listing shows a just-written key only from its third look."""

    def __init__(self, keys: dict[str, int]) -> None:
        self.keys, self.looks = keys, 0

    def ls(self, url: str) -> list:
        self.looks += 1
        shown = self.keys if self.looks >= 3 else dict(list(self.keys.items())[:-1])
        return [type("Obj", (), {"key": k, "size": v})() for k, v in shown.items()]


def test_verify_looks_again_before_a_key_counts_as_missing():
    expected = {"runs/r/manifest.json": 2, "runs/r/status.json": 4}
    waits: list[float] = []
    tool = _LateListing(expected)
    assert upload.verify(tool, "s3://b/runs/r/*", expected, sleep=waits.append) == []
    assert tool.looks == 3 and waits == list(upload.RELIST_DELAYS_S)
    never = _LateListing({**expected, "runs/r/zz.json": 1})
    never.keys = dict(list(never.keys.items())[:-1])  # zz.json never shows
    missing = upload.verify(never, "s3://b/runs/r/*", {**expected, "runs/r/zz.json": 1},
                            sleep=waits.append)
    assert missing == ["missing runs/r/zz.json"] and never.looks == 3
