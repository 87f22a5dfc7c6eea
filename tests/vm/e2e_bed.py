"""The e2e machine room: the Vultr emulator whose instances are QEMU virtual machines
(:class:`~vmhost.backend.VmHypervisor`), SeaweedFS as the B2 bucket with the example
data set, the example stage's code as a git checkout (plus ``e2e_probe.py``), and the
``launcher`` command line run as child processes against them, as a user's shell would.

The launcher itself talks to 127.0.0.1; the guests reach the emulator and the bucket only
through explicit forwards, so every command gets ``LAUNCHER_INSTANCE_API_URL`` and
``LAUNCHER_INSTANCE_S3_ENDPOINT`` with the guest-side URLs. A third forward goes through a
:class:`~keyproxy.KeyProxy` whose key a scenario can revoke. Every process is stopped by
:meth:`E2eBed.close`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from support.keys import FAKE_B2_APP_KEY, FAKE_B2_KEY_ID, FAKE_VULTR_KEY, FAKE_WANDB_KEY
from vmhost import GuestImage
from vmhost.backend import VmHypervisor

from launcher.demo.bed import ACCOUNT_PREFIXES, dataset_rows, git_checkout, stop_all
from launcher.emulator import Emulator, Timing
from launcher.sandbox.s3server import Identity, S3Server, start_s3_server
from launcher.secrets import Secret

from .keyproxy import KeyProxy

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "launcher-e2e"
API_GUEST, S3_GUEST, S3_REVOCABLE_GUEST = "169.254.100.10", "169.254.100.11", "169.254.100.12"
COMMAND_TIMEOUT_S = 300.0
KEEP_ENV = "LAUNCHER_E2E_KEEP"  # "1": leave the bed's directory (consoles, bucket) for a look
TRAIN = ["python3", "train.py", "--steps", "400", "--save-every", "100"]
# TCG has no GPU and a slow emulated disk: the e2e defaults measure the volume (1 MB/s is
# enough) and skip the matmul probe; a status upload every 10 s shows phases promptly.
E2E_DEFAULTS = {"health": {"min_disk_mb_s": 1, "matmul": False}, "heartbeat_s": 10}
STRICT_DISK = {"health": {"min_disk_mb_s": 100000, "matmul": False}, "heartbeat_s": 10}


@dataclass(frozen=True)
class CliResult:
    """One ``launcher`` command: its arguments, exit code, stdout, stderr, seconds."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str
    seconds: float


@dataclass(frozen=True)
class GuestCall:
    """A request the emulator answered for a runner (User-Agent ``launcher/runner``)."""

    t: float
    method: str
    path: str
    status: int


def stage_yaml(name: str, data_prefix: str, command: list[str]) -> dict:
    return {"name": name, "description": "The example stage wrapped by the e2e probe.",
            "command": ["python3", "e2e_probe.py", "--", *command],
            "data_prefix": data_prefix, "max_hours": 1, "cpu_only": True,
            "volume": {"size_gb": 10}, "upload_dirs": ["checkpoints", "reports"],
            "wandb": {"mode": "offline", "tags": ["e2e"]}}


class E2eBed:
    """Open with :meth:`open`; stop everything with :meth:`close` (idempotent)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.code_dir = root / "code"
        self.config_dir, self.strict_config_dir = root / "configs", root / "configs-strict"
        self.s3: S3Server | None = None
        self.proxy: KeyProxy | None = None
        self.emulator: Emulator | None = None
        self.hypervisor: VmHypervisor | None = None
        self.machine_log: list[str] = []
        self.guest_calls: list[GuestCall] = []
        self.guest_urls: dict[str, str] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, image: GuestImage) -> E2eBed:
        root = Path(tempfile.mkdtemp(prefix="launcher-e2e-"))
        root.chmod(0o755)
        bed = cls(root)
        try:
            bed._start(image)
        except BaseException:
            bed.close()
            raise
        return bed

    def _start(self, image: GuestImage) -> None:
        _git_checkout_with_probe(self.code_dir)
        _write_configs(self.config_dir, E2E_DEFAULTS)
        _write_configs(self.strict_config_dir, STRICT_DISK)
        admin = Identity("e2e", FAKE_B2_KEY_ID, Secret(FAKE_B2_APP_KEY))
        self.s3 = start_s3_server(self.root / "s3", [admin])
        self.s3.make_bucket(BUCKET)
        for prefix in ("datasets/example", "datasets/reuse"):
            self.seed(prefix, dataset_rows())
        self.proxy = KeyProxy(self.s3.endpoint)
        self.hypervisor = VmHypervisor(image, self.root / "machines", log=self.machine_log.append)
        self.emulator = Emulator(api_key=FAKE_VULTR_KEY, timing=Timing.instant(),
                                 hypervisor=self.hypervisor, seed=None)
        self.emulator.start()
        self.emulator.add_listener(self._record)
        self.guest_urls = {
            "api": self.hypervisor.forward(self.emulator.url, API_GUEST),
            "s3": self.hypervisor.forward(self.s3.endpoint, S3_GUEST),
            "s3_revocable": self.hypervisor.forward(self.proxy.url, S3_REVOCABLE_GUEST)}

    def seed(self, prefix: str, files: dict[str, str]) -> None:
        """Upload ``files`` (name -> text) under ``prefix`` in the bucket."""
        seed_dir = Path(tempfile.mkdtemp(dir=self.root))
        for name, text in files.items():
            (seed_dir / name).write_text(text)
            self.s3.put(BUCKET, f"{prefix}/{name}", seed_dir / name)

    def _record(self, exchange) -> None:
        headers = {k.lower(): v for k, v in exchange.request_headers.items()}
        if headers.get("user-agent", "").startswith("launcher/runner"):
            with self._lock:
                self.guest_calls.append(GuestCall(time.time(), exchange.method,
                                                  exchange.path, exchange.status))

    def env(self, revocable: bool = False) -> dict[str, str]:
        """The commands' environment: no account settings of this process, the suite's fake
        keys, the loopback endpoints for the launcher and the forwarded ones for guests."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(ACCOUNT_PREFIXES)}
        empty = self.root / "empty.env"
        empty.touch()
        s3_guest = self.guest_urls["s3_revocable" if revocable else "s3"]
        env.update(VULTR_KEY=FAKE_VULTR_KEY, VULTR_API_URL=self.emulator.url,
                   B2_APPLICATION_KEY_ID=FAKE_B2_KEY_ID, B2_APPLICATION_KEY=FAKE_B2_APP_KEY,
                   B2_BUCKET=BUCKET, B2_S3_ENDPOINT=self.s3.endpoint,
                   WANDB_API_KEY=FAKE_WANDB_KEY, LAUNCHER_ENV_FILE=str(empty),
                   LAUNCHER_LOCK_DIR=str(self.root / "locks"),
                   LAUNCHER_CONFIG_DIR=str(self.config_dir),
                   LAUNCHER_INSTANCE_API_URL=self.guest_urls["api"],
                   LAUNCHER_INSTANCE_S3_ENDPOINT=s3_guest,
                   PYTHONUNBUFFERED="1", COLUMNS="160")
        return env

    def launcher(self, *args: str, revocable: bool = False,
                 timeout: float = COMMAND_TIMEOUT_S) -> CliResult:
        """``launcher ARGS`` as a child process (``python -m launcher``), output captured."""
        started = time.monotonic()
        try:
            done = subprocess.run([sys.executable, "-m", "launcher", *args],
                                  env=self.env(revocable), capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL, check=False,
                                  cwd=self.root)
            code, out, err = done.returncode, done.stdout, done.stderr
        except subprocess.TimeoutExpired:
            code, out, err = -1, "", f"(timed out after {timeout:g}s)"
        return CliResult(tuple(args), code, out, err, round(time.monotonic() - started, 2))

    def bucket_json(self, key: str) -> dict | None:
        done = self.s3.s5("cat", f"s3://{BUCKET}/{key}", check=False)
        try:
            return json.loads(done.stdout)
        except ValueError:
            return None

    def listing(self, prefix: str) -> dict[str, int]:
        return self.s3.listing(BUCKET, prefix)

    def holds(self) -> dict[str, list[str]]:
        """The instances and volumes the emulator holds now (ids)."""
        state = self.emulator.state
        return {"instances": sorted(state.instances), "volumes": sorted(state.blocks)}

    def close(self) -> None:
        """Stop the VMs, the emulator, the proxy and the S3 server; remove the directory."""
        keep = os.environ.get(KEEP_ENV) == "1"
        stop_all(self.hypervisor and self.hypervisor.close, self.emulator and self.emulator.stop,
                 self.proxy and self.proxy.close, self.s3 and self.s3.stop,
                 None if keep else lambda: shutil.rmtree(self.root, ignore_errors=True))


def wait_until(done: Callable[[], object], timeout: float, cap: float = 5.0) -> bool:
    """Poll ``done`` with backoff until it is truthy or ``timeout`` passes; its last value."""
    deadline, delay = time.monotonic() + timeout, 0.5
    while True:
        if done():
            return True
        if time.monotonic() + delay > deadline:
            return bool(done())
        time.sleep(delay)
        delay = min(delay * 1.5, cap)


def _git_checkout_with_probe(dest: Path) -> None:
    staging = dest.parent / "code-src"
    shutil.copytree(ROOT / "examples" / "tiny-train", staging,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(Path(__file__).with_name("guest_probe.py"), staging / "e2e_probe.py")
    git_checkout(staging, dest)


def _write_configs(target: Path, defaults: dict) -> None:
    """A copy of ``configs/`` with the e2e defaults and the e2e stages."""
    shutil.copytree(ROOT / "configs", target)
    path = target / "launcher.yaml"
    data = yaml.safe_load(path.read_text())
    for key, value in defaults.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    for name, prefix in (("e2e", "datasets/example"), ("e2e-reuse", "datasets/reuse")):
        (target / "stages" / f"{name}.yaml").write_text(
            yaml.safe_dump(stage_yaml(name, prefix, TRAIN), sort_keys=False))
