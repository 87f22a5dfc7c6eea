"""The seeded offer catalogue and ``POST /bundles/`` search: ``{field: {op: value}}``.

Each machine is one offer whose ``id`` is also its ``ask_contract_id``. Rows carry the
fields of the OpenAPI example (search_offers.yaml) that a client filters or ranks on;
``gpu_ram`` is MB per GPU, ``storage_cost`` $/GB/month, ``dph_base`` the GPUs' $/hour, and
``dph_total`` is recomputed per search for ``allocated_storage`` GB.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from launcher.emulator.vast.errors import VastRefusal
from launcher.emulator.vast.records import HOURS_PER_MONTH

DEFAULT_ALLOCATED_GB = 8.0  # search_offers.yaml: "Default is 8GB"
OFFER_TYPES = {"on-demand": "on-demand", "ondemand": "on-demand", "bid": "bid",
               "interruptible": "bid", "reserved": "reserved"}
# gpu name, MB per GPU, GPUs, $/h for all GPUs, geolocation, reliability, Mbps down, GB disk
_MACHINES: tuple[tuple[str, int, int, float, str, float, float, float], ...] = (
    ("RTX 4090", 24564, 1, 0.35, "US-CA, US", 0.995, 880.0, 120.0),
    ("RTX 4090", 24564, 2, 0.68, "Texas, US", 0.991, 940.0, 400.0),
    ("RTX 4090", 24564, 4, 1.30, "Ontario, CA", 0.982, 610.0, 800.0),
    ("RTX 3090", 24576, 1, 0.18, "Quebec, CA", 0.975, 450.0, 90.0),
    ("RTX A6000", 49140, 2, 0.90, "Washington, US", 0.998, 1200.0, 500.0),
    ("L40S", 46068, 1, 0.80, "Oregon, US", 0.997, 2100.0, 300.0),
    ("L40S", 46068, 4, 3.10, "North Holland, NL", 0.993, 3500.0, 1500.0),
    ("A100 PCIE", 40960, 1, 0.75, "Virginia, US", 0.996, 2400.0, 250.0),
    ("A100 SXM4", 81920, 1, 1.10, "Utah, US", 0.999, 4100.0, 400.0),
    ("A100 SXM4", 81920, 8, 8.40, "Hesse, DE", 0.998, 9500.0, 4000.0),
    ("H100 PCIE", 81559, 1, 1.90, "Stockholm, SE", 0.994, 5000.0, 500.0),
    ("H100 SXM", 81559, 1, 2.30, "Texas, US", 0.999, 8000.0, 600.0),
    ("H100 SXM", 81559, 2, 4.50, "Washington, US", 0.997, 8000.0, 1200.0),
    ("H100 SXM", 81559, 8, 17.60, "Taiwan, TW", 0.985, 9800.0, 6000.0),
    ("RTX 5090", 32607, 1, 0.55, "Bavaria, DE", 0.989, 1000.0, 200.0),
    ("H200", 143771, 8, 24.00, "Iowa, US", 0.998, 9900.0, 8000.0),
)
_CUDA = {"RTX 3090": 12.4, "RTX A6000": 12.4}
OPS = ("eq", "neq", "gt", "gte", "lt", "lte", "in", "notin")


def seed_offers() -> dict[int, dict]:
    """The catalogue: offer id → row (ids from 10_000_001 in catalogue order)."""
    offers: dict[int, dict] = {}
    for index, machine in enumerate(_MACHINES):
        gpu, ram, count, dph, geo, reliability, down, disk = machine
        offer_id = 10_000_001 + index
        offers[offer_id] = {
            "id": offer_id, "ask_contract_id": offer_id, "machine_id": 50_001 + index,
            "host_id": 70_001 + index % 5, "gpu_name": gpu, "num_gpus": count, "gpu_ram": ram,
            "gpu_total_ram": ram * count, "gpu_arch": "nvidia", "cpu_cores": 16 * count,
            "cpu_ram": 64_000 * count, "disk_space": disk, "dph_base": dph,
            "storage_cost": 0.15, "min_bid": round(dph * 0.6, 4), "reliability": reliability,
            "reliability2": reliability, "inet_down": down, "inet_up": down / 2,
            "geolocation": geo, "cuda_max_good": _CUDA.get(gpu, 12.8),
            "driver_version": "570.86.15", "compute_cap": 900 if "H" in gpu[:2] else 860,
            "direct_port_count": 20, "verification": "verified", "verified": True,
            "rentable": True, "rented": False, "external": False, "static_ip": True,
            "public_ipaddr": f"198.51.100.{10 + index}", "dlperf": round(30.0 * count * dph, 2),
            "score": round(100 * reliability * count, 3), "vms_enabled": False,
        }
    return offers


def priced(row: dict, allocated_gb: float, offer_type: str) -> dict:
    """The row as a search shows it: ``dph_total`` = GPU $/h (``min_bid`` for a bid) +
    storage for ``allocated_gb``, and the ``search`` breakdown show_instance.yaml shows."""
    gpu = row["min_bid"] if offer_type == "bid" else row["dph_base"]
    disk_hour = row["storage_cost"] * allocated_gb / HOURS_PER_MONTH
    total = gpu + disk_hour
    return {**row, "dph_total": total, "is_bid": offer_type == "bid",
            "storage_total_cost": disk_hour,
            "dlperf_per_dphtotal": row["dlperf"] / total if total else 0.0,
            "search": {"gpuCostPerHour": gpu, "diskHour": disk_hour, "totalHour": total,
                       "discountTotalHour": 0, "discountedTotalPerHour": total}}


def _country(geolocation: str) -> str:
    return geolocation.rsplit(",", 1)[-1].strip()


def _normal(field: str, value: object) -> object:
    """Values compared as Vast's filters document them: ``gpu_name`` with ``_`` or spaces
    ("RTX_4090" as in the OpenAPI example), ``geolocation`` by its country code."""
    if field == "gpu_name" and isinstance(value, str):
        return value.replace("_", " ")
    return value


def _test(op: str, have: object, want: object) -> bool:
    if op in ("in", "notin"):
        inside = have in want  # type: ignore[operator]
        return inside if op == "in" else not inside
    if op in ("eq", "neq"):
        return (have == want) == (op == "eq")
    if have is None or want is None:
        return False
    try:
        return {"gt": have > want, "gte": have >= want, "lt": have < want,  # type: ignore
                "lte": have <= want}[op]
    except TypeError:
        return False


def _predicate(field: str, op: str, want: object) -> Callable[[dict], bool]:
    if op not in OPS:
        raise VastRefusal(400, "bad_query", detail=f"{op} is not a valid operator")
    if op in ("in", "notin"):
        if not isinstance(want, list):
            raise VastRefusal(400, "bad_query", detail=f"{field} {op} needs a list")
        want = [_normal(field, w) for w in want]
    else:
        want = _normal(field, want)

    def check(row: dict) -> bool:
        have = row[field]
        if field == "geolocation":
            values = want if isinstance(want, list) else [want]
            if all(isinstance(v, str) and len(v) == 2 for v in values):
                have = _country(have)
        return _test(op, have, want)
    return check


def predicates(query: dict, fields: Iterable[str]) -> list[Callable[[dict], bool]]:
    """One predicate per ``{field: {op: value}}`` entry; unknown fields or ops are a 400."""
    known = set(fields)
    checks: list[Callable[[dict], bool]] = []
    for field, condition in query.items():
        if field not in known:
            raise VastRefusal(400, "bad_key", field=field)
        if not isinstance(condition, dict):
            raise VastRefusal(400, "bad_query", detail=f"{field} needs {{op: value}}")
        checks.extend(_predicate(field, op, want) for op, want in condition.items())
    return checks


def ordered(rows: list[dict], order: object, fields: Iterable[str]) -> list[dict]:
    """Sort by ``[[field, "asc"|"desc"], ...]`` (stable; missing values last), then id."""
    if not isinstance(order, list):
        raise VastRefusal(400, "bad_query", detail="order must be a list of [field, direction]")
    known = set(fields)
    rows = sorted(rows, key=lambda r: r["id"])
    for entry in reversed(order):
        if not (isinstance(entry, list) and len(entry) == 2 and entry[0] in known):
            raise VastRefusal(400, "bad_query", detail=f"cannot order by {entry!r}")
        field, direction = entry
        descending = direction == "desc"
        rows.sort(key=lambda r, f=field: _sort_key(r.get(f), descending), reverse=descending)
    return rows


def _sort_key(value: object, descending: bool) -> tuple:
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    return (missing != descending, "" if missing else value)
