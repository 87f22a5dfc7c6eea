"""Offers, whatever the cloud: what a run needs (:class:`Requirement`), one machine type in one
place with its GPUs and price (:class:`Offer`), and the verdict on it (:class:`Verdict`: ``ok``
or excluded with its :class:`Reason` s). Each provider reads its own catalogue into these
(``launcher.providers.vultr_offers`` for Vultr); :func:`candidates` gives the eligible offers
in the order a launch tries them: **region priority, then hourly price, then plan id**.

VRAM is per GPU; ``gpu_model`` is the key of ``FULL_CARD_VRAM_GB`` ("A100"). More GPUs than
the run uses (``gpu_count``) are not bought by default: an offer with more is excluded
(``too_many_gpus``) unless ``max_gpu_count`` admits it, so a 1-GPU stage never lands on a whole
8-GPU node because that node is first in region order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from launcher.vultr import FULL_CARD_VRAM_GB
from launcher.vultr.records import card_model

DEFAULT_REGIONS = ("sjc", "sea", "lax")
HOURS_PER_MONTH = 730
PriceSource = Literal["location_cost", "hourly_cost", "monthly_cost/730", "dph_total"]



@dataclass(frozen=True)
class Requirement:
    """What a run needs. ``min_vram_gb`` is per GPU; ``gpu_model`` "" means any model."""

    min_vram_gb: float = 0
    gpu_count: int = 1
    max_gpu_count: int | None = None  # None: exactly gpu_count (no idle GPUs bought)
    gpu_model: str = ""
    allow_fractional: bool = False
    max_price_per_hour: float | None = None
    regions: tuple[str, ...] = DEFAULT_REGIONS
    needs_nvme_block: bool = True
    image_supports_vgpu: bool = False
    # Machines of a marketplace (Vast.ai) vary where a cloud's plans do not:
    min_reliability: float | None = None
    min_disk_gb: float | None = None
    min_inet_down_mbps: float | None = None
    countries: tuple[str, ...] = ()  # a marketplace's places; () = ``regions`` read as such

    @classmethod
    def from_config(cls, config: Any, profile: Any = None, **overrides: Any) -> Requirement:
        """From a stage config (a ``StageConfig``): ``profile`` (a ``GpuProfile``), else the
        stage's preferred one (``config.gpu``). ``overrides`` replace fields (CLI flags)."""
        profile = profile if profile is not None else config.gpu
        values = {
            "min_vram_gb": profile.min_vram_gb or 0,
            "gpu_count": profile.gpu_count or 1,
            "max_gpu_count": profile.max_gpu_count or None,
            "gpu_model": profile.gpu_model or "",
            "allow_fractional": bool(profile.allow_fractional),
            "max_price_per_hour": config.max_price_per_hour,
            "regions": tuple(config.regions or DEFAULT_REGIONS),
            "image_supports_vgpu": bool(config.image.supports_vgpu),
        }
        vast = getattr(config, "vast", None)
        if vast is not None:  # what a marketplace machine must also have
            values.update(min_reliability=vast.min_reliability, min_disk_gb=vast.disk_gb,
                          min_inet_down_mbps=vast.min_inet_down_mbps,
                          countries=tuple(vast.regions))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass(frozen=True)
class Reason:
    """Why an offer is excluded: a stable ``code`` and a sentence for people."""

    code: str
    text: str


@dataclass(frozen=True)
class Offer:
    """One plan in one region, with its GPUs derived as the module docstring says."""

    kind: Literal["cloud", "metal", "container"]
    plan_id: str
    region: str
    gpu_type: str | None  # as Vultr gives it ("NVIDIA_A100")
    gpu_model: str | None  # the key of FULL_CARD_VRAM_GB ("A100"), None when unknown
    gpu_count: int | None
    vram_per_gpu_gb: float | None
    total_vram_gb: float | None
    fractional: bool
    whole_node: bool
    vcpu: int  # cloud: vcpu_count; metal: cpu_threads
    ram_mb: int
    price_per_hour: float
    price_source: PriceSource
    in_stock: bool | None  # None: not asked (bare metal while a volume is needed)
    offered: bool  # the plan lists this region (or lists no locations at all)
    on_demand: bool = True  # False: the plan is sold preemptible only

    @property
    def label(self) -> str:
        """``vGPU slice``, ``whole card``, ``whole node`` or ``bare metal``."""
        if self.kind == "metal":
            return "bare metal"
        if self.fractional:
            return "vGPU slice"
        return "whole node" if self.whole_node else "whole card"

    def as_dict(self) -> dict[str, Any]:
        return {"plan": self.plan_id, **{k: v for k, v in asdict(self).items()
                                         if k != "plan_id"}, "label": self.label}


@dataclass(frozen=True)
class Verdict:
    offer: Offer
    reasons: tuple[Reason, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict[str, Any]:
        return {**self.offer.as_dict(), "ok": self.ok,
                "reasons": [asdict(r) for r in self.reasons]}


@dataclass(frozen=True)
class OfferTable:
    """Every GPU plan × every requested region, cheapest plan first, regions in priority."""

    requirement: Requirement
    verdicts: tuple[Verdict, ...] = field(default=())

    def eligible(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.ok]

    def excluded(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.ok]

    def by_plan(self) -> dict[str, list[Verdict]]:
        """Plan id -> its verdicts in region priority order (plans cheapest first)."""
        plans: dict[str, list[Verdict]] = {}
        for verdict in self.verdicts:
            plans.setdefault(verdict.offer.plan_id, []).append(verdict)
        return plans

    def closest(self, limit: int = 5) -> list[Verdict]:
        """The excluded offers nearest to fitting: fewest reasons, then cheapest; one per plan."""
        best: dict[str, Verdict] = {}
        for v in self.excluded():
            held = best.get(v.offer.plan_id)
            if held is None or len(v.reasons) < len(held.reasons):
                best[v.offer.plan_id] = v
        return sorted(best.values(), key=lambda v: (len(v.reasons), v.offer.price_per_hour,
                                                    v.offer.plan_id))[:limit]


def candidates(table: OfferTable) -> list[Offer]:
    """Eligible offers in launch order: region priority, then price, then plan id."""
    priority = {r: i for i, r in enumerate(table.requirement.regions)}
    offers = [v.offer for v in table.eligible()]
    return sorted(offers, key=lambda o: (priority.get(o.region, len(priority)),
                                         o.price_per_hour, o.plan_id))


def pick_reason(table: OfferTable) -> str:
    """Why :func:`candidates`' first offer is the one a launch tries first ("" when none)."""
    offers = candidates(table)
    if not offers:
        return ""
    first = offers[0]
    regions = table.requirement.regions
    skipped = regions[:regions.index(first.region)] if first.region in regions else ()
    before = (f"; nothing fitting in stock in {', '.join(skipped)}" if skipped else "")
    return (f"{first.region} is the first region in priority order ({', '.join(regions)}) with "
            f"a fitting plan in stock{before}; {first.plan_id} is the cheapest fitting plan "
            f"there at ${first.price_per_hour:.2f}/h")


def gpu_reasons(offer: Offer, req: Requirement) -> list[Reason]:
    if offer.gpu_model is None:
        return [Reason("unknown_model", f"GPU model of {offer.gpu_type!r} is unknown: its VRAM "
                                        "per GPU cannot be derived")]
    if offer.total_vram_gb is None:
        return [Reason("no_vram", "the plan gives no gpu_vram_gb: its VRAM is unknown")]
    if offer.gpu_count is None or offer.vram_per_gpu_gb is None:
        full = FULL_CARD_VRAM_GB[offer.gpu_model]
        return [Reason("partitioned", f"{offer.total_vram_gb:g} GB is not a whole number of "
                                      f"{full} GB {offer.gpu_model} cards (mixed or "
                                      "partitioned cards?)")]
    reasons = []
    wanted = card_model(req.gpu_model) or req.gpu_model.strip().upper()
    if wanted and offer.gpu_model != wanted:
        reasons.append(Reason("model_mismatch", f"{offer.gpu_model}, not the {wanted} asked for"))
    if offer.vram_per_gpu_gb < req.min_vram_gb:
        reasons.append(Reason("vram_too_small", f"{offer.vram_per_gpu_gb:g} GB per GPU, under "
                                                f"the {req.min_vram_gb:g} GB needed"))
    if offer.gpu_count < req.gpu_count:
        reasons.append(Reason("too_few_gpus", f"{offer.gpu_count} GPU(s), fewer than the "
                                              f"{req.gpu_count} needed"))
    most = max(req.max_gpu_count or req.gpu_count, req.gpu_count)
    if offer.gpu_count > most:
        reasons.append(Reason("too_many_gpus", f"{offer.gpu_count} GPUs, more than the {most} "
                                               "the run uses: the rest would bill idle "
                                               "(max_gpu_count)"))
    if offer.fractional and not req.allow_fractional:
        reasons.append(Reason("fractional_not_allowed",
                              "vGPU slice: fractional GPUs not allowed (allow_fractional)"))
    if offer.fractional and not req.image_supports_vgpu:
        reasons.append(Reason("image_lacks_grid",
                              "vGPU slice: the image has no GRID driver (image.supports_vgpu)"))
    return reasons
