"""The upload phase, the heartbeat and the s5cmd wrapper with real secret values in the text
they report: the manifest (the command line and the reason), the upload's problems, the
runner log's failure lines and an s5cmd refusal hold ``***`` where each secret was, never the
secret. They fail if the runner's scrubber returned its input unchanged."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from support.keys import FAKE_B2_APP_KEY, FAKE_B2_KEY_ID, FAKE_VULTR_KEY, FAKE_WANDB_KEY
from support.leaks import leaks, masked

from launcher.runner import upload
from launcher.runner.spec import RunSecrets
from launcher.runner.tools import ToolError

from .conftest import make_context

VALUES = (FAKE_VULTR_KEY, FAKE_B2_KEY_ID, FAKE_B2_APP_KEY, FAKE_WANDB_KEY)
ALL_SECRETS = RunSecrets({"VULTR_KEY": FAKE_VULTR_KEY, "B2_KEY_ID": FAKE_B2_KEY_ID,
                          "B2_APP_KEY": FAKE_B2_APP_KEY, "WANDB_API_KEY": FAKE_WANDB_KEY})
FOUR = "<***> <***> <***> <***>"


def leaky(what: str) -> str:
    return f"{what}: " + " ".join(f"<{value}>" for value in VALUES)


@pytest.fixture(scope="module")
def shared_bucket(s3_server) -> str:
    name = f"scrub-{uuid.uuid4().hex[:12]}"
    s3_server.s5("mb", f"s3://{name}")
    return name


def leaky_context(tmp_path, s3_server, bucket, **changes):
    return make_context(tmp_path, s3_server, bucket, secrets=ALL_SECRETS,
                        run_id=f"r-{uuid.uuid4().hex[:10]}", **changes)


def test_the_manifest_and_the_problems_of_an_upload_never_hold_a_secret(
        tmp_path, s3_server, shared_bucket, capsys):
    """A trainer command carrying the W&B key, an exit reason quoting every key and an
    ``upload_dirs`` entry naming one: the manifest in the bucket, the result's problems and
    runner.log say ``***`` instead."""
    ctx = leaky_context(tmp_path, s3_server, shared_bucket,
                        command=("python3", "train.py", f"--wandb-key={FAKE_WANDB_KEY}"),
                        upload_dirs=("checkpoints", f"../{FAKE_B2_APP_KEY}"))
    outcome = upload.RunOutcome(exit_code=1, reason=leaky("trainer said"))

    result = upload.upload(ctx, outcome)
    capsys.readouterr()  # runner.log's stderr copy

    got = tmp_path / "manifest.json"
    s3_server.s5("cp", f"s3://{shared_bucket}/{ctx.spec.run_prefix}/manifest.json", str(got))
    manifest_text = got.read_text()
    runner_log = Path(ctx.spec.paths.log_dir, "runner.log").read_text()
    assert leaks({"manifest.json": manifest_text, "problems": "\n".join(result.problems),
                  "runner.log": runner_log}) == []
    manifest = json.loads(manifest_text)
    assert manifest["command"] == ["python3", "train.py", "--wandb-key=***"]
    assert manifest["reason"] == f"trainer said: {FOUR}", masked(manifest["reason"])
    assert not result.verified
    assert result.problems == ("upload_dirs entry '../***' is not a plain folder name",), \
        masked(repr(result.problems))
    assert "NOT verified: upload_dirs entry '../***'" in runner_log


def test_a_failed_heartbeat_is_logged_without_the_secret_it_quoted(
        tmp_path, s3_server, shared_bucket, monkeypatch, capsys):
    ctx = leaky_context(tmp_path, s3_server, shared_bucket)

    def refuse(*args, **kwargs):
        raise ToolError(leaky("s5cmd refused"))

    monkeypatch.setattr(upload, "tool_for", refuse)
    assert upload.upload_heartbeat(ctx) is False
    stderr = capsys.readouterr().err
    runner_log = Path(ctx.spec.paths.log_dir, "runner.log").read_text()
    assert leaks({"runner.log": runner_log, "stderr": stderr}) == []
    assert f"heartbeat upload failed: s5cmd refused: {FOUR}" in runner_log, masked(runner_log)


def test_an_s5cmd_refusal_naming_a_secret_is_scrubbed(tmp_path, s3_server, shared_bucket):
    """The object's URL is part of the refusal's text; here it holds every secret value."""
    ctx = leaky_context(tmp_path, s3_server, shared_bucket)
    url = f"s3://{shared_bucket}/missing/{'-'.join(VALUES)}.bin"
    with pytest.raises(ToolError) as caught:
        upload.tool_for(ctx, timeout=20.0, attempts=1).get(url, str(tmp_path / "x"))
    message = str(caught.value)
    assert leaks({"ToolError": message}) == []
    assert f"download s3://{shared_bucket}/missing/***-***-***-***.bin" in message, \
        masked(message)
