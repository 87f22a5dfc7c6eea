"""The demo's machine room, all on 127.0.0.1: an emulated cloud whose machines run the real
runner, a SeaweedFS S3 server standing in for the B2 bucket, a seeded data set, and the
example stage's code as a git checkout. :meth:`DemoBed.env` is the environment a user's shell
would have for it.

The cloud is the ``provider``'s: ``vultr``, a Vultr emulator whose instances are local
processes booting the cloud-init document (:class:`~launcher.sandbox.ProcessHypervisor`), or
``vast``, a Vast.ai emulator whose instances are local containers running the onstart
(:mod:`launcher.demo.vast`). Everything else is the same for both.

Everything is created under one temporary directory and stopped by :meth:`DemoBed.close`
(processes by PID, bounded), on success and on every failure path. A bed may instead use
another bed's running S3 server (``s3=``): both beds' runs then land in one bucket, and the
server stays up until the bed that started it closes.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from launcher.demo.vast import ContainerMachines, start_vast, vast_left
from launcher.emulator import Emulator, Timing
from launcher.emulator.vast import VastEmulator, VastTiming
from launcher.errors import ConfigError
from launcher.sandbox import ProcessHypervisor
from launcher.sandbox.s3server import Identity, S3Server, start_s3_server
from launcher.secrets import Secret

BUCKET = "launcher-demo"
DATA_PREFIX = "datasets/example"
STAGE = "example"
GIT_TIMEOUT_S = 60.0
# Never inherited by the demo's commands: they get the demo's own keys and endpoints.
ACCOUNT_PREFIXES = ("VULTR_", "VAST_", "B2_", "WANDB_", "AWS_", "LAUNCHER_")
PROVIDERS = ("vultr", "vast")
TITLES = {"vultr": "Vultr", "vast": "Vast.ai"}


@dataclass(frozen=True)
class DemoKeys:
    """The demo account's keys; fresh random ones unless a caller (a test) hands some in."""

    vultr: Secret = field(repr=False)
    b2_key_id: str = field(repr=False)
    b2_key: Secret = field(repr=False)
    wandb: Secret = field(repr=False)
    vast: Secret = field(repr=False, default_factory=lambda: Secret(secrets.token_hex(32)))

    @classmethod
    def fresh(cls) -> DemoKeys:
        return cls(Secret(secrets.token_urlsafe(32)), f"demo{secrets.token_hex(8)}",
                   Secret(secrets.token_urlsafe(30)), Secret(secrets.token_hex(20)))

    def values(self) -> tuple[str, ...]:
        return (self.vultr.reveal(), self.b2_key_id, self.b2_key.reveal(), self.wandb.reveal(),
                self.vast.reveal())


def dataset_rows(files: int = 4, rows: int = 50) -> dict[str, str]:
    """CSV files of points on y = 2x + 1 (what the example stage should learn)."""
    made = {}
    for index in range(files):
        xs = [n / 100 for n in range(index * rows, (index + 1) * rows)]
        lines = ["x,y"] + [f"{x:.2f},{2 * x + 1:.2f}" for x in xs]
        made[f"part-{index:02d}.csv"] = "\n".join(lines) + "\n"
    return made


class DemoBed:
    """Start with :meth:`open` (or ``with DemoBed.open(...) as bed``); stop with :meth:`close`."""

    def __init__(self, root: Path, keys: DemoKeys, provider: str = "vultr") -> None:
        if provider not in PROVIDERS:
            raise ConfigError(f"the demo runs on {' or '.join(PROVIDERS)}, not {provider!r}")
        self.root, self.keys, self.provider = root, keys, provider
        self.title = TITLES[provider]
        self.s3: S3Server | None = None
        self.owns_s3 = True  # False: another bed's server, not stopped by this bed
        self.emulator: Emulator | VastEmulator | None = None
        self.hypervisor: ProcessHypervisor | None = None  # vultr's machines
        self.containers: ContainerMachines | None = None  # vast's machines
        self.code_dir = root / "code"
        self.config_dir = root / "configs"
        self.machine_log: list[str] = []

    @classmethod
    def open(cls, example_dir: Path, config_dir: Path, keys: DemoKeys | None = None,
             timing: Timing | VastTiming | None = None, *, machines: bool = True,
             latency_s: float = 0.0, provider: str = "vultr",
             s3: S3Server | None = None) -> DemoBed:
        """Build everything; on any failure stop what was started and re-raise. Without
        ``machines`` instances do not boot (API state only); ``latency_s`` delays every API
        answer (benchmarks); ``timing`` is the provider's (:func:`demo_timing`). ``s3``:
        another bed's running server, whose admin key must be ``keys``' B2 key; its bucket
        is used as it is (the data set is written again, the same bytes) and the server is
        left running on :meth:`close`."""
        check_inputs(example_dir, config_dir)
        timing = timing or demo_timing(provider, instant=False)
        root = Path(tempfile.mkdtemp(prefix="launcher-demo-"))
        root.chmod(0o755)  # a root-run demo trains as `nobody`, which must reach the code
        try:
            bed = cls(root, keys or DemoKeys.fresh(), provider)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        try:
            bed._start(example_dir, config_dir, timing, machines, latency_s, s3)
        except BaseException:
            bed.close()
            raise
        return bed

    def _start(self, example_dir: Path, config_dir: Path, timing: Timing | VastTiming,
               machines: bool, latency_s: float, s3: S3Server | None = None) -> None:
        shutil.copytree(config_dir, self.config_dir)
        git_checkout(example_dir, self.code_dir)
        self._open_bucket(s3)
        machines_dir = self.root / "machines" if machines else None
        if machines_dir is not None:
            machines_dir.mkdir(mode=0o755)
        if self.provider == "vast":
            if not isinstance(timing, VastTiming):
                raise TypeError("the Vast demo takes a VastTiming")
            self.emulator, self.containers = start_vast(
                machines_dir, self.keys.vast.reveal(), timing, latency_s,
                self.machine_log.append)
            return
        if not isinstance(timing, Timing):
            raise TypeError("the Vultr demo takes an emulator Timing")
        if machines_dir is not None:
            self.hypervisor = ProcessHypervisor(machines_dir, log=self.machine_log.append)
        self.emulator = Emulator(api_key=self.keys.vultr.reveal(), timing=timing,
                                 hypervisor=self.hypervisor, seed=None, latency_s=latency_s)
        self.emulator.start()

    def _open_bucket(self, shared: S3Server | None) -> None:
        """Start the S3 server and make the bucket, or use ``shared``'s; seed the data set
        (writing the same objects again is harmless)."""
        if shared is None:
            admin = Identity("demo", self.keys.b2_key_id, self.keys.b2_key)
            self.s3 = start_s3_server(self.root / "s3", [admin])
            self.s3.make_bucket(BUCKET)
        elif (shared.admin.key_id, shared.admin.secret.reveal()) != (
                self.keys.b2_key_id, self.keys.b2_key.reveal()):
            raise ConfigError("a shared S3 server must accept this bed's B2 key: open both "
                              "beds with the same keys")
        else:
            self.s3, self.owns_s3 = shared, False
        assert self.s3 is not None
        seed = self.root / "seed"
        seed.mkdir()
        for name, text in dataset_rows().items():
            (seed / name).write_text(text)
            self.s3.put(BUCKET, f"{DATA_PREFIX}/{name}", seed / name)

    def env(self) -> dict[str, str]:
        """The environment of the demo's ``launcher`` commands: this process's, without any
        account settings, plus the demo account (an empty ``.env`` so none is read)."""
        assert self.emulator is not None and self.s3 is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith(ACCOUNT_PREFIXES)}
        empty_env_file = self.root / "empty.env"
        empty_env_file.touch()
        if self.provider == "vast":
            env.update(VAST_API_KEY=self.keys.vast.reveal(), VAST_API_URL=self.emulator.url)
        else:
            env.update(VULTR_KEY=self.keys.vultr.reveal(), VULTR_API_URL=self.emulator.url)
        env.update(B2_APPLICATION_KEY_ID=self.keys.b2_key_id,
                   B2_APPLICATION_KEY=self.keys.b2_key.reveal(), B2_BUCKET=BUCKET,
                   B2_S3_ENDPOINT=self.s3.endpoint, WANDB_API_KEY=self.keys.wandb.reveal(),
                   LAUNCHER_ENV_FILE=str(empty_env_file),
                   LAUNCHER_LOCK_DIR=str(self.root / "locks"),
                   LAUNCHER_CONFIG_DIR=str(self.config_dir))
        return env

    def left(self) -> dict[str, int]:
        """What still exists: instances and volumes in the emulator, machines still running
        (Vast: instances, stopped ones too, and containers still alive; it has no volumes)."""
        if self.provider == "vast":
            assert not isinstance(self.emulator, Emulator)
            return vast_left(self.emulator, self.containers)
        assert not isinstance(self.emulator, VastEmulator)
        state = self.emulator.state if self.emulator else None
        machines = self.hypervisor.machines() if self.hypervisor else []
        running = [m for m in machines if m.state in ("booting", "running")]
        return {"instances": len(state.instances) if state else 0,
                "volumes": len(state.blocks) if state else 0, "machines": len(running)}

    def close(self) -> None:
        """Stop the machines, the emulator and the S3 server (unless it is another bed's);
        remove the directory."""
        stop_all(self.hypervisor and self.hypervisor.close,
                 self.containers and self.containers.close, self.emulator and self.emulator.stop,
                 self.s3.stop if self.s3 and self.owns_s3 else None,
                 lambda: shutil.rmtree(self.root, ignore_errors=True))

    def __enter__(self) -> DemoBed:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def demo_timing(provider: str, *, instant: bool) -> Timing | VastTiming:
    """How fast the provider's emulated resources change state: at once, or a few seconds
    each (as on the cloud, but shorter)."""
    if provider == "vast":
        return VastTiming.instant() if instant else VastTiming.realistic()
    return Timing.instant() if instant else Timing.realistic()


def stop_all(*steps: Callable[[], object] | None) -> None:
    """Run every step in order (None: nothing to stop), also after one of them raised, so no
    server outlives a failed stop; then raise the first error."""
    first: BaseException | None = None
    for step in steps:
        if step is None:
            continue
        try:
            step()
        except BaseException as exc:  # noqa: BLE001 - the following steps must still run
            first = first or exc
    if first is not None:
        raise first


def check_inputs(example_dir: Path, config_dir: Path) -> None:
    """ConfigError naming what is missing from the example's or the configs' folder."""
    if not (example_dir / "train.py").is_file():
        raise ConfigError(f"{example_dir}/train.py not found: pass the example stage's "
                          "folder as --example-dir, or leave it out for the shipped one")
    if not (config_dir / "stages" / f"{STAGE}.yaml").is_file():
        raise ConfigError(f"{config_dir}/stages/{STAGE}.yaml not found: pass a folder "
                          "with it as --config-dir, or leave it out for the shipped configs")


def git_checkout(source: Path, dest: Path) -> None:
    """``source`` copied to ``dest`` as a one-commit git repository (the code bundle is made
    with ``git archive``), so the demo works from any tree, committed or not."""
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = {**os.environ, "GIT_AUTHOR_NAME": "launcher demo", "GIT_COMMITTER_NAME": "launcher demo",
           "GIT_AUTHOR_EMAIL": "demo@localhost", "GIT_COMMITTER_EMAIL": "demo@localhost",
           "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(dest)}
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "example stage"]):
        try:
            subprocess.run(["git", "-C", str(dest), *argv], env=env, capture_output=True,
                           check=True, timeout=GIT_TIMEOUT_S)
        except FileNotFoundError:
            raise ConfigError("the demo needs git (the code bundle is a git archive)") from None
        except subprocess.CalledProcessError as exc:
            raise ConfigError(f"git {argv[0]} failed: {exc.stderr.decode()[-300:]}") from None
