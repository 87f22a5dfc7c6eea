"""Typed, frozen records of what the Vultr API returns.

Each ``from_api(d)`` takes the API's dict, ignores keys it does not know (a new API field never
breaks the launcher) and tolerates missing optional ones with neutral defaults; it never invents
values (an absent ``hourly_cost`` stays None). Lists become tuples. Secrets the API returns
(an instance's ``default_password``) are not kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ._coerce import _float, _int, _opt_float, _opt_int, _opt_str, _str, _strs

# VRAM of one whole card, per model. A vcg plan with less than this is a vGPU slice.
# A100 comes as 40 GB and 80 GB cards: 40 GB or more counts as a whole card.
FULL_CARD_VRAM_GB: dict[str, int] = {
    "A16": 16,
    "A40": 48,
    "A100": 40,
    "L40S": 48,
    "L40": 48,
    "H100": 80,
    "H200": 141,
    "GH200": 96,
    "MI300X": 192,
    "MI325X": 256,
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
class Plan:
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

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> Plan:
        return cls(
            id=_str(d, "id"),
            type=_str(d, "type"),
            vcpu_count=_int(d, "vcpu_count"),
            ram=_int(d, "ram"),
            disk=_int(d, "disk"),
            bandwidth=_int(d, "bandwidth"),
            monthly_cost=_float(d, "monthly_cost"),
            hourly_cost=_opt_float(d, "hourly_cost"),
            gpu_vram_gb=_opt_int(d, "gpu_vram_gb"),
            gpu_type=_opt_str(d, "gpu_type"),
            locations=_strs(d, "locations"),
        )

    @property
    def is_gpu(self) -> bool:
        return self.type == "vcg" or self.gpu_type is not None or bool(self.gpu_vram_gb)

    @property
    def is_whole_node(self) -> bool:
        return self.type == "vdm"

    @property
    def full_card_vram_gb(self) -> int | None:
        model = card_model(self.gpu_type)
        return FULL_CARD_VRAM_GB[model] if model else None

    @property
    def is_fractional_gpu(self) -> bool:
        """True for a vGPU slice of a card, which needs NVIDIA's GRID driver and a licence.

        Rule: a ``vcg`` plan whose ``gpu_vram_gb`` is below the full card's VRAM (see
        :data:`FULL_CARD_VRAM_GB`). When the card model or the VRAM is unknown the plan is
        counted as fractional, on purpose: a wrong "whole card" would boot an image whose
        data-centre driver cannot drive a vGPU and bill until the run's deadline.
        """
        if self.type != "vcg":
            return False
        full = self.full_card_vram_gb
        if full is None or self.gpu_vram_gb is None:
            return True
        return self.gpu_vram_gb < full


@dataclass(frozen=True)
class MetalPlan:
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

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> MetalPlan:
        return cls(
            id=_str(d, "id"),
            type=_str(d, "type"),
            cpu_count=_int(d, "cpu_count"),
            cpu_threads=_int(d, "cpu_threads"),
            cpu_model=_str(d, "cpu_model"),
            ram=_int(d, "ram"),
            disk=_str(d, "disk"),
            disk_count=_int(d, "disk_count"),
            bandwidth=_int(d, "bandwidth"),
            monthly_cost=_float(d, "monthly_cost"),
            hourly_cost=_opt_float(d, "hourly_cost"),
            gpu_vram_gb=_opt_int(d, "gpu_vram_gb"),
            gpu_type=_opt_str(d, "gpu_type"),
            locations=_strs(d, "locations"),
        )

    @property
    def is_gpu(self) -> bool:
        return self.gpu_type is not None or bool(self.gpu_vram_gb)


@dataclass(frozen=True)
class Region:
    id: str
    city: str
    country: str
    continent: str
    options: tuple[str, ...]

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> Region:
        return cls(
            id=_str(d, "id"),
            city=_str(d, "city"),
            country=_str(d, "country"),
            continent=_str(d, "continent"),
            options=_strs(d, "options"),
        )

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

    def has(self, plan_id: str) -> bool:
        return plan_id in self.available_plans


@dataclass(frozen=True)
class OperatingSystem:
    id: int
    name: str
    arch: str
    family: str

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> OperatingSystem:
        return cls(
            id=_int(d, "id"), name=_str(d, "name"), arch=_str(d, "arch"), family=_str(d, "family")
        )


@dataclass(frozen=True)
class Instance:
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

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> Instance:
        return cls(
            id=_str(d, "id"),
            label=_str(d, "label"),
            region=_str(d, "region"),
            plan=_str(d, "plan"),
            status=_str(d, "status"),
            power_status=_str(d, "power_status"),
            server_status=_str(d, "server_status"),
            main_ip=_str(d, "main_ip"),
            tags=_strs(d, "tags"),
            os=_str(d, "os"),
            os_id=_opt_int(d, "os_id"),
            hostname=_str(d, "hostname"),
            date_created=_str(d, "date_created"),
        )

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
class Block:
    """A block storage volume. ``attached_to`` is the instance id, None when detached."""

    id: str
    label: str
    region: str
    size_gb: int
    status: str
    mount_id: str
    attached_to: str | None
    block_type: str
    cost: float
    date_created: str

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> Block:
        return cls(
            id=_str(d, "id"),
            label=_str(d, "label"),
            region=_str(d, "region"),
            size_gb=_int(d, "size_gb"),
            status=_str(d, "status"),
            mount_id=_str(d, "mount_id"),
            attached_to=_opt_str(d, "attached_to_instance"),
            block_type=_str(d, "block_type"),
            cost=_float(d, "cost"),
            date_created=_str(d, "date_created"),
        )

    @property
    def state(self) -> str:
        return f"status={self.status} attached_to={self.attached_to or '-'}"


@dataclass(frozen=True)
class Snapshot:
    id: str
    description: str
    status: str
    size: int
    date_created: str
    os_id: int | None
    app_id: int | None

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> Snapshot:
        return cls(
            id=_str(d, "id"),
            description=_str(d, "description"),
            status=_str(d, "status"),
            size=_int(d, "size"),
            date_created=_str(d, "date_created"),
            os_id=_opt_int(d, "os_id"),
            app_id=_opt_int(d, "app_id"),
        )

    @property
    def state(self) -> str:
        return f"status={self.status}"


@dataclass(frozen=True)
class SshKey:
    id: str
    name: str
    ssh_key: str
    date_created: str

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> SshKey:
        return cls(
            id=_str(d, "id"),
            name=_str(d, "name"),
            ssh_key=_str(d, "ssh_key"),
            date_created=_str(d, "date_created"),
        )


@dataclass(frozen=True)
class Account:
    name: str
    email: str
    balance: float
    pending_charges: float
    acls: tuple[str, ...]

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> Account:
        return cls(
            name=_str(d, "name"),
            email=_str(d, "email"),
            balance=_float(d, "balance"),
            pending_charges=_float(d, "pending_charges"),
            acls=_strs(d, "acls"),
        )


@dataclass(frozen=True)
class User:
    """A (sub-)user. The list endpoint gives users flat; the spec wraps each in ``user``."""

    id: str
    name: str
    email: str
    api_enabled: bool
    acls: tuple[str, ...]

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> User:
        if isinstance(d.get("user"), dict):
            d = d["user"]
        return cls(
            id=_str(d, "id"),
            name=_str(d, "name"),
            email=_str(d, "email"),
            api_enabled=d.get("api_enabled") is True,
            acls=_strs(d, "acls"),
        )
