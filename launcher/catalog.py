"""GPU plans joined with live stock: what could be launched where, right now.

This reads only public endpoints (``/plans?type=vcg``, ``/regions/{id}/availability``), so it
works without an API key. Offer selection builds on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from launcher.errors import ConfigError
from launcher.vultr import Plan, VultrClient

DEFAULT_REGIONS = ("sjc", "sea", "lax")


@dataclass(frozen=True)
class PlanStock:
    """One GPU plan and the regions (of those asked about, in priority order) that stock it."""

    plan: Plan
    in_stock: tuple[str, ...]

    @property
    def kind(self) -> str:
        """``whole node``, ``whole card`` or ``vGPU slice`` (needs the GRID driver + licence)."""
        if self.plan.is_whole_node:
            return "whole node"
        return "vGPU slice" if self.plan.is_fractional_gpu else "whole card"

    def as_dict(self) -> dict:
        p = self.plan
        return {
            "id": p.id,
            "type": p.type,
            "gpu_type": p.gpu_type,
            "gpu_vram_gb": p.gpu_vram_gb,
            "kind": self.kind,
            "vcpu_count": p.vcpu_count,
            "ram_mb": p.ram,
            "monthly_cost": p.monthly_cost,
            "hourly_cost": p.hourly_cost,
            "in_stock": list(self.in_stock),
        }


def parse_regions(text: str) -> tuple[str, ...]:
    """``"sjc, sea,lax"`` -> ``("sjc", "sea", "lax")``; duplicates and blanks are refused."""
    regions = tuple(r.strip().lower() for r in text.split(","))
    if not all(regions) or len(set(regions)) != len(regions):
        raise ConfigError(f"--regions takes distinct region ids separated by commas, not {text!r}")
    return regions


def gpu_stock(
    client: VultrClient, regions: Sequence[str] = DEFAULT_REGIONS, min_vram_gb: int = 0
) -> list[PlanStock]:
    """GPU plans with at least ``min_vram_gb`` of VRAM, cheapest first, with their live stock.

    A region id Vultr does not know raises :class:`ConfigError`; an API failure raises, it is
    never turned into "no stock".
    """
    known = {r.id for r in client.list_regions()}
    unknown = [r for r in regions if r not in known]
    if unknown:
        raise ConfigError(
            f"unknown region id(s): {', '.join(unknown)}; Vultr knows {', '.join(sorted(known))}"
        )
    stock = {r: set(client.region_availability(r, type="vcg").available_plans) for r in regions}
    plans = [
        p for p in client.list_plans(type="vcg") if p.is_gpu and (p.gpu_vram_gb or 0) >= min_vram_gb
    ]
    plans.sort(key=lambda p: (p.monthly_cost, p.id))
    return [PlanStock(p, tuple(r for r in regions if p.id in stock[r])) for p in plans]
