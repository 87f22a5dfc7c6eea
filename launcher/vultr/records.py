"""Typed, frozen records of what the Vultr API returns.

Each ``from_api(d)`` takes the API's dict, ignores keys it does not know (a new API field never
breaks the launcher) and tolerates missing optional ones with neutral defaults; it never invents
values (an absent ``hourly_cost`` stays None). Lists become tuples. Secrets the API returns
(an instance's ``default_password``) are not kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ._coerce import ApiRecord, _strs

# VRAM of one whole card, per model, as Vultr deploys them. A vcg plan with less than this is
# a vGPU slice: Vultr's cloud A100s are 80 GB cards sold in 1/20 … 1/2 slices, so its 40 GB
# A100 plan is half a card (GRID driver), not a 40 GB A100.
FULL_CARD_VRAM_GB: dict[str, int] = {
    "A16": 16,
    "A40": 48,
    "A100": 80,
    "L40S": 48,
    "L40": 48,
    "H100": 80,
    "H200": 141,
    "GH200": 96,
    "B200": 192,
    "MI300X": 192,
    "MI325X": 256,
    "MI355X": 288,
}
# Dedicated GPU plans (``type: vdm``) carry none of gpu_type / gpu_vram_gb / gpu_count in
# GET /plans: their GPUs by exact plan id (never parsed), as SpareCores/sc-crawler
# (src/sc_crawler/vendors/_vultr.py, _DEDICATED_METAL_GPU_PLANS) lists them from Vultr's
# pricing pages: plan id -> (gpu_type, total VRAM in GB). An id missing here is not used.
DEDICATED_GPU_PLANS: dict[str, tuple[str, int]] = {
    "vcg-a16-96c-878g-256vram": ("NVIDIA_A16", 256),
    "vcg-a100-96c-896g-320vram": ("NVIDIA_A100", 320),
    "vcg-h100-216c-1914gb-640vram": ("NVIDIA_H100", 640),
    "vcg-b200-248c-2826g-1536vram": ("NVIDIA_B200", 1536),
    "vcg-mi325x-252c-2872g-1536vram": ("AMD_MI325X", 1536),
    "vcg-mi355x-252c-2872g-2304vram": ("AMD_MI355X", 2304),
}


def card_model(gpu_type: str | None) -> str | None:
    """The model key of ``gpu_type`` in :data:`FULL_CARD_VRAM_GB` ("NVIDIA_A100" -> "A100")."""
    if not gpu_type:
        return None
    for token in re.split(r"[\s_\-/]+", gpu_type.upper()):
        if token in FULL_CARD_VRAM_GB:
            return token
    return None


@dataclass(frozen=True)
class Plan(ApiRecord):
    """A cloud plan (``GET /plans``). Plan ids are opaque: never parse them.

    GPU plans have ``type == "vcg"`` with ``gpu_type`` and ``gpu_vram_gb`` (this plan's VRAM
    share); whole-node GPU plans may report ``type == "vdm"``.
    """

    id: str
    type: str
    vcpu_count: int
    ram: int
    disk: int
    bandwidth: int
    monthly_cost: float
    hourly_cost: float | None
    gpu_vram_gb: int | None
    gpu_type: str | None
    locations: tuple[str, ...]
    # False: not sold on demand (preemptible only); None: the answer does not say (on demand).
    deploy_ondemand: bool | None = None
    # Regions whose hourly price differs from hourly_cost (Vultr's ``location_cost``).
    location_hourly: tuple[tuple[str, float], ...] = field(default=(),
                                                           metadata={"api": "location_cost"})

    def __post_init__(self) -> None:
        known = DEDICATED_GPU_PLANS.get(self.id)
        if known and not (self.gpu_type or self.gpu_vram_gb):
            object.__setattr__(self, "gpu_type", known[0])
            object.__setattr__(self, "gpu_vram_gb", known[1])

    @property
    def is_gpu(self) -> bool:
        return self.type in ("vcg", "vdm") or self.gpu_type is not None or bool(self.gpu_vram_gb)

    @property
    def is_whole_node(self) -> bool:
        return self.type == "vdm"


@dataclass(frozen=True)
class MetalPlan(ApiRecord):
    """A bare-metal plan (``GET /plans-metal``, list key ``plans_metal``). ``disk`` is as given."""

    id: str
    type: str
    cpu_count: int
    cpu_threads: int
    cpu_model: str
    ram: int
    disk: str
    disk_count: int
    bandwidth: int
    monthly_cost: float
    hourly_cost: float | None
    gpu_vram_gb: int | None
    gpu_type: str | None
    locations: tuple[str, ...]
    deploy_ondemand: bool | None = None
    location_hourly: tuple[tuple[str, float], ...] = field(default=(),
                                                           metadata={"api": "location_cost"})

    @property
    def is_gpu(self) -> bool:
        return self.gpu_type is not None or bool(self.gpu_vram_gb)


@dataclass(frozen=True)
class Region(ApiRecord):
    id: str
    city: str
    country: str
    continent: str
    options: tuple[str, ...]

    @property
    def supports_nvme_block(self) -> bool:
        """Whether high-performance (NVMe) block storage can be created here."""
        return "block_storage_high_perf" in self.options


@dataclass(frozen=True)
class Availability:
    """The plans in stock in one region right now (``GET /regions/{id}/availability``)."""

    region: str
    available_plans: tuple[str, ...]

    @classmethod
    def from_api(cls, region: str, d: dict[str, Any]) -> Availability:
        return cls(region=region, available_plans=_strs(d, "available_plans"))


@dataclass(frozen=True)
class Instance(ApiRecord):
    """An instance. Ready means ``active`` + ``running`` + server ``ok``."""

    id: str
    label: str
    region: str
    plan: str
    status: str
    power_status: str
    server_status: str
    main_ip: str
    tags: tuple[str, ...]
    os: str
    os_id: int | None
    hostname: str
    date_created: str
    # The instance's address on its VPC ("" without one; Vultr OpenAPI: "Only relevant when a
    # VPC is attached").
    internal_ip: str = ""

    @property
    def is_ready(self) -> bool:
        return (self.status, self.power_status, self.server_status) == ("active", "running", "ok")

    @property
    def state(self) -> str:
        return (
            f"status={self.status} power_status={self.power_status} "
            f"server_status={self.server_status}"
        )


@dataclass(frozen=True)
class Vpc(ApiRecord):
    """A VPC (``GET /vpcs``): one private IPv4 network in one region,
    ``v4_subnet``/``v4_subnet_mask`` (e.g. ``10.99.0.0`` / 24)."""

    id: str
    region: str
    description: str
    v4_subnet: str
    v4_subnet_mask: int
    date_created: str


@dataclass(frozen=True)
class InstanceVpc(ApiRecord):
    """One VPC of an instance (``GET /instances/{id}/vpcs``): its MAC and address there."""

    id: str
    mac_address: str
    ip_address: str


@dataclass(frozen=True)
class Block(ApiRecord):
    """A block storage volume. ``attached_to`` is the instance id, None when detached."""

    id: str
    label: str
    region: str
    size_gb: int
    status: str
    mount_id: str
    attached_to: str | None = field(metadata={"api": "attached_to_instance"})
    block_type: str
    cost: float
    date_created: str

    @property
    def state(self) -> str:
        return f"status={self.status} attached_to={self.attached_to or '-'}"


@dataclass(frozen=True)
class Snapshot(ApiRecord):
    id: str
    description: str
    status: str
    size: int
    date_created: str
    os_id: int | None
    app_id: int | None

    @property
    def state(self) -> str:
        return f"status={self.status}"


@dataclass(frozen=True)
class SshKey(ApiRecord):
    id: str
    name: str
    ssh_key: str
    date_created: str


@dataclass(frozen=True)
class Account(ApiRecord):
    name: str
    email: str
    balance: float
    pending_charges: float
    acls: tuple[str, ...]


@dataclass(frozen=True)
class User(ApiRecord):
    """A (sub-)user. The list endpoint gives users flat; the spec wraps each in ``user``."""

    id: str
    name: str
    email: str
    api_enabled: bool
    acls: tuple[str, ...]

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> User:
        return super().from_api(d["user"] if isinstance(d.get("user"), dict) else d)
