"""Issue 14, points 6 and 12 for the bucket: no call waits without end or in silence, and a
failure says how it failed (refused, no answer, the key), naming the endpoint.

Stalling endpoints are servers on 127.0.0.1 each test starts and stops (tests/support/
stalls.py); the bucket's timeouts are cut to a second so nothing waits for long.
"""

from __future__ import annotations

import json
import re
import socket
import time

import pytest
from runner.bucket.conftest import SECRETS
from support.stalls import silent_server

from launcher import bucket as bucket_module
from launcher import waiting
from launcher.bucket import NO_ANSWER, REFUSED, Bucket, BucketAddress, BucketError, BucketTimeouts
from launcher.cli import main
from launcher.waiting import ProgressLines
from runs.conftest import RUN

SHORT = BucketTimeouts(read_s=1.0, read_attempts=2, upload_s=1.0, upload_attempts=1)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.timeout(60)
def test_a_silent_endpoint_is_cut_at_the_read_timeout_and_said_while_waited_on():
    lines: list[str] = []
    with silent_server() as port:
        store = Bucket(BucketAddress(f"http://127.0.0.1:{port}", "runs-bucket"), SECRETS,
                       timeouts=SHORT, progress=ProgressLines(0.3, lines.append))
        started = time.monotonic()
        with pytest.raises(BucketError) as raised:
            store.list("s3://runs-bucket/runs/")
    assert time.monotonic() - started < 10
    assert raised.value.kind == NO_ANSWER
    assert str(raised.value).startswith(
        f"bucket: list s3://runs-bucket/runs/: the endpoint 127.0.0.1:{port} did not answer "
        "in 1 s")
    wanted = re.compile(rf"still waiting for the bucket at 127\.0\.0\.1:{port} "
                        r"\(list s3://runs-bucket/runs/\), \d+ s")
    assert lines and all(wanted.fullmatch(line) for line in lines)


def test_a_refused_connection_is_said_as_such():
    port = closed_port()
    store = Bucket(BucketAddress(f"http://127.0.0.1:{port}", "runs-bucket"), SECRETS,
                   timeouts=SHORT)
    with pytest.raises(BucketError) as raised:
        store.list("s3://runs-bucket/runs/")
    assert raised.value.kind == REFUSED
    assert str(raised.value) == (
        f"bucket: list s3://runs-bucket/runs/: the endpoint 127.0.0.1:{port} refused the "
        f"connection\nhint: is an S3 server listening at http://127.0.0.1:{port}? check "
        "B2_S3_ENDPOINT (or storage.endpoint_url)")


@pytest.mark.timeout(60)
def test_status_of_a_run_with_a_silent_bucket_says_it_waits_and_ends(cli_env, capsys,
                                                                     monkeypatch):
    monkeypatch.setattr(bucket_module, "DEFAULT_TIMEOUTS", SHORT)
    monkeypatch.setattr(waiting, "PROGRESS_EVERY_S", 0.3)
    with silent_server() as port:
        monkeypatch.setenv("B2_S3_ENDPOINT", f"http://127.0.0.1:{port}")
        started = time.monotonic()
        code = main(["status", RUN])
    out, err = capsys.readouterr()
    assert time.monotonic() - started < 15  # it used to be silent for up to 600 s x 3
    assert code == 0  # the run's view, with the bucket's problem in it
    assert f"still waiting for the bucket at 127.0.0.1:{port} (list s3://" in err
    assert f"the endpoint 127.0.0.1:{port} did not answer in 1 s" in out + err


def test_doctor_says_the_bucket_refused_the_connection_not_the_key(cli_env, capsys,
                                                                   monkeypatch):
    port = closed_port()
    monkeypatch.setenv("B2_S3_ENDPOINT", f"http://127.0.0.1:{port}")
    main(["doctor", "--json"])
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    bucket = checks["bucket"]
    assert bucket["status"] == "fail"
    assert f"the endpoint 127.0.0.1:{port} refused the connection" in bucket["detail"]
    assert "master key" not in bucket["hint"] and "B2_S3_ENDPOINT" in bucket["hint"]
