"""The s5cmd wrapper: secrets only in the environment, scrubbed one-line errors, retries."""

from __future__ import annotations

import pytest
from support.keys import FAKE_B2_APP_KEY, FAKE_B2_KEY_ID

from launcher.runner.s3 import MASTER_KEY_HINT, ObjectInfo, S3Tool
from launcher.runner.s5cmd import b2_region, find_binary
from launcher.runner.spec import RunSecrets
from launcher.runner.tools import ToolError

from .conftest import SECRETS, put, secret_free


def tool(server, secrets=SECRETS, endpoint=None, **options) -> S3Tool:
    options.setdefault("sleep", lambda seconds: None)
    return S3Tool(server.s5cmd, endpoint or server.endpoint, secrets,
                  {"PATH": "/usr/bin:/bin", "AWS_PROFILE": "inherited"}, 20.0, **options)


def test_secrets_travel_in_the_environment_never_on_argv(s3_server):
    t = tool(s3_server)
    argv = t.argv("sync", "s3://b/p/*", "/tmp/x/") + t.argv("ls", "s3://b/*", quiet=False)
    assert secret_free(*argv)
    env = t.env()
    assert env["AWS_ACCESS_KEY_ID"] == FAKE_B2_KEY_ID
    assert env["AWS_SECRET_ACCESS_KEY"] == FAKE_B2_APP_KEY
    assert env["AWS_REQUEST_CHECKSUM_CALCULATION"] == "when_required"
    assert env["AWS_RESPONSE_CHECKSUM_VALIDATION"] == "when_required"
    assert "AWS_PROFILE" not in env and "AWS_REGION" not in env


def test_region_comes_from_a_b2_endpoint_unless_given():
    assert b2_region("https://s3.us-west-004.backblazeb2.com") == "us-west-004"
    assert b2_region("http://127.0.0.1:9000") == ""
    t = S3Tool("s5cmd", "https://s3.eu-central-003.backblazeb2.com", SECRETS, {}, 5.0)
    assert t.env()["AWS_REGION"] == "eu-central-003"
    assert S3Tool("s5cmd", "https://x", SECRETS, {}, 5.0, region="r1").env()["AWS_REGION"] == "r1"


def test_binary_is_configurable(tmp_path):
    assert find_binary({"LAUNCHER_S5CMD": "/opt/s5cmd"}) == "/opt/s5cmd"
    fake = tmp_path / "s5cmd"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    found = find_binary({"PATH": str(tmp_path)})
    assert found in (str(fake), "/usr/local/bin/s5cmd")


def test_ls_lists_recursively_with_sizes(s3_server, bucket, tmp_path):
    put(s3_server, bucket, "p/a.bin", b"12345", tmp_path)
    put(s3_server, bucket, "p/sub/b.bin", b"1", tmp_path)
    put(s3_server, bucket, "q/c.bin", b"22", tmp_path)
    found = sorted(tool(s3_server).ls(f"s3://{bucket}/p/*"), key=lambda o: o.key)
    assert found == [ObjectInfo("p/a.bin", 5), ObjectInfo("p/sub/b.bin", 1)]
    assert tool(s3_server).ls(f"s3://{bucket}/nothing/*") == []


def test_get_and_cp_up_round_trip(s3_server, bucket, tmp_path):
    source = tmp_path / "up.txt"
    source.write_text("payload")
    t = tool(s3_server)
    t.cp_up(str(source), f"s3://{bucket}/runs/x/status.json")
    t.get(f"s3://{bucket}/runs/x/status.json", str(tmp_path / "down.txt"))
    assert (tmp_path / "down.txt").read_text() == "payload"


def test_wrong_secret_is_refused_at_once_scrubbed_with_the_master_key_hint(s3_server, bucket):
    wrong = RunSecrets({"B2_KEY_ID": FAKE_B2_KEY_ID, "B2_APP_KEY": "wrong-" + FAKE_B2_APP_KEY})
    sleeps: list[float] = []
    with pytest.raises(ToolError) as caught:
        tool(s3_server, secrets=wrong, sleep=sleeps.append, region="us-east-1").ls(
            f"s3://{bucket}/*")
    message = str(caught.value)
    assert "SignatureDoesNotMatch" in message and MASTER_KEY_HINT in message
    assert "\n" not in message and secret_free(message)
    assert sleeps == []  # an auth refusal is not retried


def test_sync_with_a_refused_key_fails_although_s5cmd_exits_0(s3_server, bucket, tmp_path):
    wrong = RunSecrets({"B2_KEY_ID": "nobody-knows-this-id", "B2_APP_KEY": "x" * 20})
    with pytest.raises(ToolError, match="403") as caught:
        tool(s3_server, secrets=wrong).sync_down(f"s3://{bucket}/p/*", str(tmp_path / "d"))
    assert MASTER_KEY_HINT in str(caught.value)
    with pytest.raises(ToolError, match="InvalidAccessKeyId"):
        tool(s3_server, secrets=wrong, region="us-east-1").sync_down(
            f"s3://{bucket}/p/*", str(tmp_path / "d"))


def test_transient_failures_are_retried_with_backoff_then_reported(s3_server):
    sleeps: list[float] = []
    t = tool(s3_server, endpoint="http://127.0.0.1:9", retry_count=0, attempts=3,
             sleep=sleeps.append)
    with pytest.raises(ToolError, match=r"after 3 attempts") as caught:
        t.ls("s3://any/*")
    assert "connection refused" in str(caught.value)
    assert sleeps == [1.0, 2.0]


def test_a_missing_binary_is_one_clear_error(tmp_path):
    t = S3Tool(str(tmp_path / "no-s5cmd"), "http://127.0.0.1:9", SECRETS, {}, 5.0, attempts=3,
               sleep=lambda seconds: None)
    with pytest.raises(ToolError, match="cannot run"):
        t.ls("s3://b/*")
