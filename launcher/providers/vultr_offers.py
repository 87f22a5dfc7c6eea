"""Vultr's offers: every GPU plan × every requested region, judged against a requirement.

:func:`rank_offers` reads the catalogue (read-only, public endpoints: ``/regions``,
``/plans?type=all`` (its GPU plans: ``vcg`` and ``vdm``), ``/plans-metal``, and per region
one ``/regions/{id}/availability?type=all`` and one ``?type=vbm``) and returns an
:class:`OfferTable`: one :class:`Verdict` per plan and region, each ``ok`` or excluded with
its :class:`Reason` s. :func:`candidates` gives the eligible
offers in the order a launch tries them: **region priority, then hourly price, then plan id**.
An API failure raises (it is never "no offers"); an unknown region id raises ``ConfigError``.

VRAM per GPU (``gpu_vram_gb`` is the plan's VRAM *share*; plan ids are never parsed):

- the card model comes from ``gpu_type`` (``card_model``: "NVIDIA_A100" -> "A100") and its
  whole-card VRAM from ``FULL_CARD_VRAM_GB``. An unknown model is not eligible (reason
  ``unknown_model``): nothing can be derived safely.
- cloud ``vcg`` with ``gpu_vram_gb`` below a full card: a vGPU slice, 1 GPU with
  ``gpu_vram_gb`` of VRAM; eligible only when fractional GPUs are allowed AND the image has
  NVIDIA's GRID driver (``image.supports_vgpu``).
- cloud ``vcg`` with exactly a full card: 1 GPU of ``gpu_vram_gb``.
- whole-node plans (``type: vdm``, or ``vcg`` above one card) and bare metal:
  ``gpu_count = round(gpu_vram_gb / full card)``, VRAM per GPU = the full card. A total that is
  not (within 5 %) a whole number of cards is excluded (``partitioned``).

Where this can be wrong: a node with mixed or partitioned (MIG) cards; Vultr changing what
``gpu_vram_gb`` means; a model missing from the table. ECC-reserved memory means a process sees
about 6 % less than the card's VRAM: the health phase on the instance checks the real number.

More GPUs than the run uses (``gpu_count``) are not bought by default: a plan with more is
excluded (``too_many_gpus``) unless ``max_gpu_count`` admits it, so a 1-GPU stage never lands
on a whole 8-GPU node because that node is first in region order.

Price per hour: the region's own ``location_cost`` when the plan lists one for it, else
``hourly_cost`` when the API gives one (> 0), else ``monthly_cost / 730`` (``Offer.price_source``
says which; per-region prices as SpareCores/sc-crawler reads them). It is the plan's price
only, without the volume. A plan with ``deploy_ondemand: false`` is sold preemptible only and
is excluded (``not_on_demand``). Dedicated GPU plans (``type: vdm``) carry no GPU fields; their
GPUs come from ``DEDICATED_GPU_PLANS`` by exact id (``launcher/vultr/records.py``).

Bare metal: stock is read with ``availability?type=vbm`` (the OpenAPI document's type for Bare
Metal; the emulator files metal plans under it too), and only when no volume is needed. Bare
metal cannot take a block-storage volume (Vultr attaches volumes to cloud instances only), so
metal offers are excluded (``metal_no_block``) whenever the requirement needs a volume, which a
launch always does.
"""


from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from launcher.errors import ConfigError
from launcher.providers.offers import (
    HOURS_PER_MONTH,
    Offer,
    OfferTable,
    PriceSource,
    Reason,
    Requirement,
    Verdict,
    gpu_reasons,
)
from launcher.vultr import FULL_CARD_VRAM_GB, MetalPlan, Plan, Region, VultrClient
from launcher.vultr.records import card_model

CARD_TOLERANCE = 0.05  # how far a whole node's VRAM may be from a whole number of cards
METAL_AVAILABILITY_TYPE = "vbm"
# "all", not "vcg": dedicated GPU plans are "vdm", which a vcg listing or availability may
# leave out (sc-crawler reads them from type=all); GPU plans are picked out here.
CLOUD_AVAILABILITY_TYPE = "all"


# -- ranking ----------------------------------------------------------------------------------

def rank_offers(client: VultrClient, requirement: Requirement, *,
                list_excluded: bool = True) -> OfferTable:
    """Judge every GPU plan (cloud and bare metal) in every requested region. Read-only.
    Without ``list_excluded`` the bare-metal plans are not even listed when a volume is
    needed (they could only be judged ``metal_no_block``): a launch saves that call."""
    regions = _known_regions(client, requirement.regions)
    cloud = [p for p in client.list_plans(type=CLOUD_AVAILABILITY_TYPE) if p.is_gpu]
    skip_metal = requirement.needs_nvme_block and not list_excluded
    metal = [] if skip_metal else [p for p in client.list_metal_plans() if p.is_gpu]
    stock: dict[tuple[str, str], frozenset[str]] = {}

    def in_stock(region: str, kind: str, plan_id: str) -> bool | None:
        if kind == "metal" and requirement.needs_nvme_block:
            return None  # excluded whatever its stock (metal_no_block): three calls saved
        avail_type = METAL_AVAILABILITY_TYPE if kind == "metal" else CLOUD_AVAILABILITY_TYPE
        key = (region, avail_type)
        if key not in stock:  # one request per region and type, per call
            stock[key] = frozenset(
                client.region_availability(region, type=avail_type).available_plans)
        return plan_id in stock[key]

    plans: list[tuple[Literal["cloud", "metal"], Plan | MetalPlan]] = [
        *(("cloud", p) for p in cloud), *(("metal", p) for p in metal)]
    plans.sort(key=lambda kp: (_price(kp[1], "")[0], kp[1].id))
    verdicts = []
    for kind, plan in plans:
        for region in requirement.regions:
            offer = _offer(kind, plan, region, in_stock(region, kind, plan.id))
            verdicts.append(Verdict(offer, judge(offer, regions[region], requirement)))
    return OfferTable(requirement, tuple(verdicts))


def _known_regions(client: VultrClient, wanted: Sequence[str]) -> dict[str, Region]:
    if not wanted:
        raise ConfigError("no regions to look in: give at least one region id")
    known = {r.id: r for r in client.list_regions()}
    unknown = [r for r in wanted if r not in known]
    if unknown:
        raise ConfigError(f"unknown region id(s): {', '.join(unknown)}; "
                          f"Vultr knows {', '.join(sorted(known))}")
    return {r: known[r] for r in wanted}


def _price(plan: Plan | MetalPlan, region: str) -> tuple[float, PriceSource]:
    local = dict(plan.location_hourly).get(region)
    if local:
        return local, "location_cost"
    if plan.hourly_cost is not None and plan.hourly_cost > 0:
        return plan.hourly_cost, "hourly_cost"
    return plan.monthly_cost / HOURS_PER_MONTH, "monthly_cost/730"


def derive_gpus(plan: Plan | MetalPlan, kind: str) -> tuple[int | None, float | None, bool]:
    """``(gpu_count, vram_per_gpu_gb, fractional)`` by the rules of the module docstring;
    ``(None, None, False)`` where they cannot be derived (unknown model, no VRAM figure, not a
    whole number of cards)."""
    full = FULL_CARD_VRAM_GB.get(card_model(plan.gpu_type) or "")
    vram = plan.gpu_vram_gb
    if full is None or not vram:
        return None, None, False
    whole_node = kind == "metal" or getattr(plan, "is_whole_node", False)
    if vram < full:
        return (None, None, False) if whole_node else (1, float(vram), True)
    cards = round(vram / full)
    if abs(vram - cards * full) > CARD_TOLERANCE * full:
        return None, None, False
    return cards, float(full), False


def _offer(kind: Literal["cloud", "metal"], plan: Plan | MetalPlan, region: str,
           in_stock: bool | None) -> Offer:
    count, per_gpu, fractional = derive_gpus(plan, kind)
    price, source = _price(plan, region)
    vcpu = plan.cpu_threads if isinstance(plan, MetalPlan) else plan.vcpu_count
    return Offer(
        kind=kind, plan_id=plan.id, region=region, gpu_type=plan.gpu_type,
        gpu_model=card_model(plan.gpu_type), gpu_count=count, vram_per_gpu_gb=per_gpu,
        total_vram_gb=float(plan.gpu_vram_gb) if plan.gpu_vram_gb else None,
        fractional=fractional,
        whole_node=kind == "metal" or plan.type == "vdm" or (count or 0) > 1,
        vcpu=vcpu, ram_mb=plan.ram, price_per_hour=round(price, 4), price_source=source,
        in_stock=in_stock, offered=not plan.locations or region in plan.locations,
        on_demand=plan.deploy_ondemand is not False)


def judge(offer: Offer, region: Region, req: Requirement) -> tuple[Reason, ...]:
    """Every reason ``offer`` does not meet ``req`` in ``region`` (empty: eligible)."""
    reasons = [*gpu_reasons(offer, req)]
    if req.max_price_per_hour is not None and offer.price_per_hour > req.max_price_per_hour:
        reasons.append(Reason("over_price", f"${offer.price_per_hour:.2f}/h is over the "
                                            f"${req.max_price_per_hour:.2f}/h maximum"))
    if req.needs_nvme_block and offer.kind == "metal":
        reasons.append(Reason("metal_no_block", "bare metal takes no block-storage volume "
                                                "(Vultr attaches volumes to cloud instances)"))
    if not offer.on_demand:
        reasons.append(Reason("not_on_demand", "sold preemptible only (deploy_ondemand: false)"))
    if not offer.offered:
        reasons.append(Reason("not_offered", f"not offered in {offer.region} at all"))
    elif offer.in_stock is False:
        reasons.append(Reason("sold_out", f"not in stock in {offer.region}"))
    if req.needs_nvme_block and not region.supports_nvme_block:
        reasons.append(Reason("no_nvme_block", f"{offer.region} has no NVMe block storage "
                                               "(no block_storage_high_perf)"))
    return tuple(reasons)
