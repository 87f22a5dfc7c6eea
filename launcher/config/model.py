"""The typed configuration a launch works from: :class:`StageConfig` and its parts.

Every value here is checked (JSON Schema, then :mod:`launcher.config.loader`) and merged
(stage over ``configs/launcher.yaml``, then the account's variables, then command-line
overrides). Nothing here is secret: credentials live in :class:`launcher.config.Account`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from launcher.runner.spec import DataLink, DataSource, PythonEnv
from launcher.training.ups import UpsConfig


@dataclass(frozen=True)
class ProfileOverrides:
    """What changes when a profile is the one launched: ``args`` are appended to the stage's
    command, ``env`` is set over the stage's environment."""

    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class GpuProfile:
    """One acceptable GPU configuration. ``min_vram_gb`` is per GPU as the training process
    sees it (a vGPU slice counts its share); ``allow_fractional`` admits vGPU slices, which
    need the GRID driver (``ImageConfig.supports_vgpu``). A plan may have at most
    ``max_gpu_count`` GPUs (0: exactly ``gpu_count``), so idle GPUs are not bought by default."""

    min_vram_gb: int
    gpu_count: int = 1
    max_gpu_count: int = 0
    gpu_model: str = ""
    allow_fractional: bool = False
    name: str = "preferred"
    overrides: ProfileOverrides = field(default_factory=ProfileOverrides)


@dataclass(frozen=True)
class VolumeConfig:
    """The block volume. ``reuse_label`` (``launcher-cache-<name>``, see
    :mod:`launcher.naming`) names an existing volume to reuse instead of creating one; a
    reused volume is always kept, so ``keep`` is then true."""

    size_gb: int
    block_type: str
    mount_point: str
    fs_type: str
    keep: bool
    device_wait_s: int
    reuse_label: str = ""


@dataclass(frozen=True)
class StorageConfig:
    endpoint_url: str
    region: str
    bucket: str
    data_prefix: str
    runs_prefix: str


@dataclass(frozen=True)
class WandbConfig:
    project: str
    entity: str
    mode: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class CodeConfig:
    kind: str
    git_url: str = ""
    git_commit: str = ""


@dataclass(frozen=True)
class ImageConfig:
    """The snapshot to boot: ``latest`` (the newest complete snapshot whose description starts
    with ``snapshot_prefix``) or one snapshot id. ``supports_vgpu``: the image has the GRID
    driver that fractional (vGPU) plans need."""

    snapshot: str = "latest"
    snapshot_prefix: str = "launcher-gpu-"
    supports_vgpu: bool = False

    @property
    def wants_latest(self) -> bool:
        return self.snapshot == "latest"


@dataclass(frozen=True)
class VastConfig:
    """Vast.ai settings (``--provider vast``): the Docker image, the container's disk (the
    run's cache) and what an offer must have. ``regions``: countries in priority order; ()
    means the stage's regions read as their countries. ``apt_packages``: installed by the
    runner when the image lacks them (:mod:`launcher.runner.aptget`)."""

    image: str = "pytorch/pytorch:2.9.1-cuda12.8-cudnn9-devel"
    disk_gb: float = 128
    min_reliability: float = 0.95
    min_inet_down_mbps: float = 200
    regions: tuple[str, ...] = ()
    apt_packages: tuple[str, ...] = ("git",)


@dataclass(frozen=True)
class AccessConfig:
    """``ssh_public_key``: the path of a checked public key file to install at launch, or ""."""

    ssh_public_key: str = ""


@dataclass(frozen=True)
class ClusterConfig:
    """``nodes`` machines for one run (1: one machine, the path without a cluster). The
    other fields become each node's :class:`launcher.runner.spec.ClusterSpec` (read its
    docstring): how the command is started (``torchrun`` or ``env``), the rendezvous port,
    and the barrier, peer-loss and reaping times."""

    nodes: int = 1
    launch: str = "torchrun"
    rdzv_port: int = 29400
    barrier_timeout_s: float = 900.0
    peer_timeout_s: float = 60.0
    reap_grace_s: float = 300.0


@dataclass(frozen=True)
class StageConfig:
    """A stage merged over the defaults: everything a launch needs to know, typed.
    ``profiles`` are the acceptable GPUs, best first; ``gpu`` is the first (preferred) one.
    ``files`` names the files it came from, for messages."""

    name: str
    description: str
    command: tuple[str, ...]
    workdir: str
    provider: str
    regions: tuple[str, ...]
    profiles: tuple[GpuProfile, ...]
    volume: VolumeConfig
    max_hours: float
    max_cost_usd: float | None
    heartbeat_s: int
    storage: StorageConfig
    wandb: WandbConfig
    code: CodeConfig
    cpu_only: bool
    env: tuple[tuple[str, str], ...]
    upload_dirs: tuple[str, ...]
    min_disk_mb_s: float
    matmul: bool
    files: tuple[str, ...]
    max_price_per_hour: float | None = None
    image: ImageConfig = field(default_factory=ImageConfig)
    access: AccessConfig = field(default_factory=AccessConfig)
    vast: VastConfig = field(default_factory=VastConfig)
    # The data set as sources and links (empty: storage.data_prefix alone), the code's own
    # environment, and for a UPS stage its settings (the command is then built from them).
    data_sources: tuple[DataSource, ...] = ()
    data_links: tuple[DataLink, ...] = ()
    python_env: PythonEnv = field(default_factory=PythonEnv)
    ups: UpsConfig | None = None
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def __post_init__(self) -> None:
        if not self.profiles:
            raise ValueError("a stage needs at least one GPU profile")

    @property
    def gpu(self) -> GpuProfile:
        """The preferred profile (what ``StageConfig.gpu`` always meant)."""
        return self.profiles[0]

    @property
    def snapshot_prefix(self) -> str:
        return self.image.snapshot_prefix

    def for_profile(self, profile: GpuProfile) -> StageConfig:
        """This stage as launched on ``profile``: its ``overrides.args`` appended to the
        command, its ``overrides.env`` over the env, and ``profiles`` narrowed to it (with the
        overrides spent, so applying it twice changes nothing)."""
        env = dict(self.env)
        env.update(profile.overrides.env)
        spent = dataclasses.replace(profile, overrides=ProfileOverrides())
        return dataclasses.replace(
            self, command=(*self.command, *profile.overrides.args),
            env=tuple(sorted(env.items())), profiles=(spent,))
