"""The emulator's fixed catalogue: regions, plans, operating systems and the seeded account.

Plain data shaped like Vultr's responses. Whole GPU nodes (8×H100) are listed by ``GET
/plans?type=vcg`` with ``type: "vdm"``, as Vultr does in practice; a dedicated B200 node is
listed with no GPU fields at all, as SpareCores/sc-crawler (``vendors/_vultr.py``) reads the
live catalogue, and both shapes are served because the sources differ. Every plan carries
``deploy_ondemand`` / ``deploy_preemptible`` / ``location_cost`` as sc-crawler reads them (one
plan has a regional price). Prices are illustrative. Plan ``locations`` are where
a plan is offered at all; ``DEFAULT_STOCK`` (what ``/regions/{id}/availability`` answers) is a
subset, so a plan can be listed in a region yet sold out there (the A100 40 GB in sjc). Numbers
follow the OpenAPI types: ``monthly_cost`` is an integer and ``plans-metal`` ``disk`` a string.
"""

from __future__ import annotations

_ALL_US = ["ewr", "sjc", "sea", "lax", "ord"]


def _region(rid: str, city: str, country: str, continent: str, options: list[str]) -> dict:
    return {"id": rid, "city": city, "country": country, "continent": continent, "options": options}


_BASE = ["ddos_protection", "load_balancers", "kubernetes"]
_BOTH = [*_BASE, "block_storage_storage_opt", "block_storage_high_perf"]

REGIONS: list[dict] = [
    _region("ewr", "New Jersey", "US", "North America", _BOTH),
    _region("sjc", "Silicon Valley", "US", "North America", _BOTH),
    _region("sea", "Seattle", "US", "North America", _BOTH),
    _region("lax", "Los Angeles", "US", "North America", _BOTH),
    _region("ord", "Chicago", "US", "North America", [*_BASE, "block_storage_storage_opt"]),
    _region("ams", "Amsterdam", "NL", "Europe", _BOTH),
    _region("nrt", "Tokyo", "JP", "Asia", list(_BASE)),
]


def _plan(pid: str, ptype: str, vcpu: int, ram_mb: int, disk: int, bw: int, hourly: float,
          locations: list[str], gpu: tuple[str, int] | None = None) -> dict:
    plan = {"id": pid, "vcpu_count": vcpu, "ram": ram_mb, "disk": disk, "disk_count": 1,
            "bandwidth": bw, "monthly_cost": round(hourly * 730), "hourly_cost": hourly,
            "type": ptype, "locations": list(locations), "deploy_ondemand": True,
            "deploy_preemptible": False, "location_cost": {}}
    if gpu is not None:
        plan["gpu_type"], plan["gpu_vram_gb"] = gpu
    return plan


def _vcg(pid: str, gpu: str, vram: int, vcpu: int, ram_gb: int, disk: int, hourly: float,
         locations: list[str], ptype: str = "vcg") -> dict:
    bandwidth = 1024 * max(1, min(10, vcpu // 2))
    return _plan(pid, ptype, vcpu, ram_gb * 1024, disk, bandwidth, hourly, locations,
                 (f"NVIDIA_{gpu}", vram))


_A16 = ["ewr", "sjc", "ord"]
_A40 = ["ewr", "sjc", "lax", "ams"]
_A100 = ["ewr", "sjc", "sea", "ams"]

PLANS: list[dict] = [
    _plan("vc2-1c-1gb", "vc2", 1, 1024, 25, 1024, 0.007, [*_ALL_US, "ams", "nrt"]),
    _plan("vc2-1c-2gb", "vc2", 1, 2048, 55, 2048, 0.015, [*_ALL_US, "ams", "nrt"]),
    _plan("vc2-2c-4gb", "vc2", 2, 4096, 80, 3072, 0.030, [*_ALL_US, "ams", "nrt"]),
    _plan("vhf-1c-2gb", "vhf", 1, 2048, 64, 2048, 0.018, _ALL_US),
    _plan("vhf-2c-4gb", "vhf", 2, 4096, 128, 3072, 0.036, _ALL_US),
    _vcg("vcg-a16-2c-8g-2vram", "A16", 2, 2, 8, 70, 0.059, _A16),
    _vcg("vcg-a16-3c-16g-4vram", "A16", 4, 3, 16, 90, 0.117, _A16),
    _vcg("vcg-a16-6c-32g-8vram", "A16", 8, 6, 32, 170, 0.235, _A16),
    _vcg("vcg-a16-12c-64g-16vram", "A16", 16, 12, 64, 350, 0.47, _A16),
    _vcg("vcg-a40-1c-5g-2vram", "A40", 2, 1, 5, 90, 0.075, _A40),
    _vcg("vcg-a40-2c-10g-4vram", "A40", 4, 2, 10, 180, 0.15, _A40),
    _vcg("vcg-a40-4c-20g-8vram", "A40", 8, 4, 20, 360, 0.30, _A40),
    _vcg("vcg-a40-6c-30g-12vram", "A40", 12, 6, 30, 540, 0.45, _A40),
    _vcg("vcg-a40-8c-40g-16vram", "A40", 16, 8, 40, 720, 0.60, _A40),
    _vcg("vcg-a40-12c-60g-24vram", "A40", 24, 12, 60, 1080, 0.90, _A40),
    _vcg("vcg-a40-24c-120g-48vram", "A40", 48, 24, 120, 1400, 1.71, _A40),
    _vcg("vcg-a100-1c-6g-4vram", "A100", 4, 1, 6, 70, 0.123, _A100),
    _vcg("vcg-a100-2c-12g-8vram", "A100", 8, 2, 12, 140, 0.246, _A100),
    _vcg("vcg-a100-2c-15g-10vram", "A100", 10, 2, 15, 170, 0.31, _A100),
    _vcg("vcg-a100-3c-30g-20vram", "A100", 20, 3, 30, 350, 0.62, _A100),
    _vcg("vcg-a100-6c-60g-40vram", "A100", 40, 6, 60, 700, 1.23, _A100),
    _vcg("vcg-a100-12c-120g-80vram", "A100", 80, 12, 120, 1400, 2.60, ["ewr", "sea", "lax"]),
    _vcg("vcg-l40s-16c-180g-48vram", "L40S", 48, 16, 180, 1200, 1.67, ["ewr", "sjc", "lax"]),
    _vcg("vcg-h100-8x-224c-2048g-640vram", "H100", 640, 224, 2048, 16000, 23.92,
         ["ewr", "sea"], ptype="vdm"),
    _plan("vcg-b200-248c-2826g-1536vram", "vdm", 248, 2826 * 1024, 30000, 10240, 47.84,
          ["ord"]),
]


def _metal(pid: str, cpus: int, threads: int, model: str, ram_gb: int, disk: str, hourly: float,
           locations: list[str], gpu: tuple[str, int] | None = None) -> dict:
    plan = {"id": pid, "cpu_count": cpus, "cpu_threads": threads, "cpu_model": model,
            "ram": ram_gb * 1024, "disk": disk, "disk_count": 2, "bandwidth": 25600,
            "monthly_cost": round(hourly * 730), "monthly_cost_preemptible": round(hourly * 365),
            "hourly_cost": hourly, "type": "NVMe", "locations": list(locations)}
    if gpu is not None:
        plan["gpu_type"], plan["gpu_vram_gb"] = gpu
    return plan


METAL_PLANS: list[dict] = [
    _metal("vbm-8c-132gb", 8, 16, "E-2388G", 128, "1920", 0.65, ["ewr", "sjc", "ord"]),
    _metal("vbm-112c-2048gb-8-h100-gpu", 112, 224, "Platinum 8480+", 2048, "3840", 23.92,
           ["ewr", "sea"], ("NVIDIA_H100", 640)),
    _metal("vbm-64c-2048gb-8-a100-gpu", 64, 128, "EPYC 7543", 2048, "3840", 16.44,
           ["ewr", "sjc"], ("NVIDIA_A100", 640)),
]

# os_id values the API treats as "deploy from something else", not as an installable OS.
PSEUDO_OS_IDS = frozenset({159, 164, 180, 186})
SNAPSHOT_OS_ID = 164

OPERATING_SYSTEMS: list[dict] = [
    {"id": 1743, "name": "Ubuntu 22.04 LTS x64", "arch": "x64", "family": "ubuntu"},
    {"id": 2284, "name": "Ubuntu 24.04 LTS x64", "arch": "x64", "family": "ubuntu"},
    {"id": 2136, "name": "Debian 12 x64 (bookworm)", "arch": "x64", "family": "debian"},
    {"id": 159, "name": "Custom", "arch": "x64", "family": "iso"},
    {"id": 164, "name": "Snapshot", "arch": "x64", "family": "snapshot"},
    {"id": 180, "name": "Backup", "arch": "x64", "family": "backup"},
    {"id": 186, "name": "Application", "arch": "x64", "family": "application"},
]

# (region, plan) pairs offered there but sold out by default: fallback paths get exercised.
SOLD_OUT = frozenset({
    ("sjc", "vcg-a100-6c-60g-40vram"),
    ("sjc", "vcg-a100-3c-30g-20vram"),
    ("lax", "vcg-l40s-16c-180g-48vram"),
    ("ewr", "vcg-a40-24c-120g-48vram"),
})


def default_stock() -> dict[str, list[str]]:
    """Region id → plan ids in stock: every plan's locations minus ``SOLD_OUT``."""
    stock: dict[str, list[str]] = {r["id"]: [] for r in REGIONS}
    for plan in [*PLANS, *METAL_PLANS]:
        for region in plan["locations"]:
            if (region, plan["id"]) not in SOLD_OUT:
                stock[region].append(plan["id"])
    return stock


BLOCK_TYPES: dict[str, tuple[int, int, float]] = {
    # block_type: (min GB, max GB, USD per GB-month); the region option that enables it
    "high_perf": (10, 10_000, 0.10),
    "storage_opt": (40, 40_000, 0.025),
}
BLOCK_OPTION = {"high_perf": "block_storage_high_perf", "storage_opt": "block_storage_storage_opt"}

ACCOUNT: dict = {
    "name": "Launcher Test", "email": "owner@example.com",
    "acls": ["manage_users", "subscriptions_view", "subscriptions", "billing", "support",
             "provisioning", "dns", "abuse", "upgrade", "firewall", "alerts", "objstore",
             "loadbalancer"],
    "balance": -250.75, "pending_charges": 12.34,
    "last_payment_date": "2026-10-01T09:00:00+00:00", "last_payment_amount": -100.0,
}

USERS: list[dict] = [
    {"id": "7a1c9f0e-3b7d-4e2a-9c55-0d6f4b1e8a21", "name": "Owner Admin",
     "email": "admin@example.com", "api_enabled": True,
     "acls": ["manage_users", "subscriptions", "provisioning", "billing"]},
    {"id": "c4e8b2d6-51f0-4a9b-8e37-2f1d6c9a0b54", "name": "launcher-service",
     "email": "launcher-service@example.com", "api_enabled": True,
     "acls": ["provisioning", "subscriptions_view"]},
]

SSH_KEYS: list[dict] = [
    {"id": "3b8066a7-b438-455a-9688-44afc9a3597f", "name": "laptop",
     "ssh_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEmulatorLaptopKeyNotReal0000 me@laptop",
     "date_created": "2026-01-05T10:00:00+00:00"},
    {"id": "9e2f41c3-7d6a-4b80-a1f5-c3e7d2b90a16", "name": "ci",
     "ssh_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEmulatorCiKeyNotReal000000 ci@runner",
     "date_created": "2026-02-11T08:30:00+00:00"},
]

SNAPSHOTS: list[dict] = [
    {"id": "5f0d2c1e-8a3b-4c6d-9e7f-0a1b2c3d4e5f",
     "description": "launcher-gpu-ubuntu2204-550-12.4-20261101",
     "date_created": "2026-11-01T12:00:00+00:00", "size": 32 * 1024**3,
     "os_id": 1743, "app_id": 0},
]
