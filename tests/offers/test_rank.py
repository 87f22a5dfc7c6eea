"""Offer selection against the emulator: derivation, reasons, ordering, read-only, failures."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from conftest import client_for

from launcher.errors import ConfigError, TransientError
from launcher.providers.offers import Requirement, candidates
from launcher.providers.vultr_offers import derive_gpus, rank_offers
from launcher.vultr import Plan

L40S = "vcg-l40s-16c-180g-48vram"
A40_48 = "vcg-a40-24c-120g-48vram"
A100_80 = "vcg-a100-12c-120g-80vram"
A100_40 = "vcg-a100-6c-60g-40vram"
H100_NODE = "vcg-h100-8x-224c-2048g-640vram"
METAL_H100 = "vbm-112c-2048gb-8-h100-gpu"
METAL_A100 = "vbm-64c-2048gb-8-a100-gpu"


def verdict(table, plan, region):
    return next(v for v in table.verdicts if (v.offer.plan_id, v.offer.region) == (plan, region))


def codes(table, plan, region):
    return [r.code for r in verdict(table, plan, region).reasons]


def test_candidates_are_ordered_by_region_priority_then_price(client):
    table = rank_offers(client, Requirement(min_vram_gb=40, regions=("sjc", "sea", "lax")))
    order = [(o.region, o.plan_id) for o in candidates(table)]
    assert order == [("sjc", L40S), ("sjc", A40_48),
                     ("sea", A100_80),
                     ("lax", A40_48), ("lax", A100_80)]
    prices = [o.price_per_hour for o in candidates(table) if o.region == "sjc"]
    assert prices == sorted(prices)
    # the 8-GPU node fits 40 GB per GPU, but a 1-GPU run would leave 7 idle
    node = next(v for v in table.verdicts if v.offer.plan_id == H100_NODE
                and v.offer.region == "sea")
    assert [r.code for r in node.reasons] == ["too_many_gpus"]
    assert "8 GPUs, more than the 1 the run uses" in node.reasons[0].text
    table = rank_offers(client, Requirement(min_vram_gb=40, max_gpu_count=8))
    assert ("sea", H100_NODE) in [(o.region, o.plan_id) for o in candidates(table)]
    # the same plans, other priority: sea first
    table = rank_offers(client, Requirement(min_vram_gb=40, regions=("sea", "sjc")))
    assert candidates(table)[0].region == "sea"


def test_ties_in_price_break_on_plan_id(client, emulator):
    table = rank_offers(client, Requirement(min_vram_gb=80, gpu_count=8, needs_nvme_block=False,
                                            regions=("ewr",)))
    same_price = [o.plan_id for o in candidates(table) if o.price_per_hour == 23.92]
    assert same_price == sorted(same_price) == [METAL_H100, H100_NODE]


def test_sold_out_in_sjc_falls_to_sea(client, emulator):
    need = Requirement(min_vram_gb=40, regions=("sjc", "sea"))
    emulator.set_stock("sjc", [])
    table = rank_offers(client, need)
    assert candidates(table)[0].region == "sea"
    assert codes(table, L40S, "sjc") == ["sold_out"]
    assert "not in stock in sjc" in verdict(table, L40S, "sjc").reasons[0].text
    assert codes(table, L40S, "sea") == ["not_offered"]


def test_a_region_without_nvme_block_storage_is_excluded_with_its_reason(client):
    table = rank_offers(client, Requirement(min_vram_gb=16, regions=("ord", "sjc")))
    ord_offers = [v for v in table.verdicts if v.offer.region == "ord"]
    assert ord_offers and all("no_nvme_block" in [r.code for r in v.reasons] for v in ord_offers)
    assert codes(table, "vcg-a16-12c-64g-16vram", "ord") == ["no_nvme_block"]  # in stock there
    assert {o.region for o in candidates(table)} == {"sjc"}
    # a run without a volume does not care
    table = rank_offers(client, Requirement(min_vram_gb=16, regions=("ord",),
                                            needs_nvme_block=False))
    assert [o.plan_id for o in candidates(table)] == ["vcg-a16-12c-64g-16vram"]


@pytest.mark.parametrize(("allow", "grid", "eligible"), [
    (False, False, False), (True, False, False), (False, True, False), (True, True, True)])
def test_fractional_needs_permission_and_a_grid_image(client, allow, grid, eligible):
    need = Requirement(min_vram_gb=40, regions=("sea",), allow_fractional=allow,
                       image_supports_vgpu=grid)
    table = rank_offers(client, need)
    v = verdict(table, A100_40, "sea")
    assert v.offer.fractional and v.offer.gpu_count == 1 and v.offer.vram_per_gpu_gb == 40
    assert v.offer.label == "vGPU slice"
    assert v.ok is eligible
    expected = ([] if allow else ["fractional_not_allowed"]) + ([] if grid else
                                                               ["image_lacks_grid"])
    assert [r.code for r in v.reasons] == expected
    if eligible:  # cheaper than the whole A100 80 GB in sea, so it comes first there
        assert candidates(table)[0].plan_id == A100_40


def test_the_whole_h100_node_counts_as_eight_80_gb_cards(client):
    table = rank_offers(client, Requirement(min_vram_gb=80, gpu_count=8, regions=("sea",)))
    node = verdict(table, H100_NODE, "sea").offer
    assert (node.gpu_model, node.gpu_count, node.vram_per_gpu_gb, node.total_vram_gb) == (
        "H100", 8, 80, 640)
    assert node.whole_node and not node.fractional and node.kind == "cloud"
    assert [o.plan_id for o in candidates(table)] == [H100_NODE]
    assert codes(table, A100_80, "sea") == ["too_few_gpus"]


def test_metal_offers_are_derived_stocked_by_vbm_and_need_no_volume(client, emulator):
    need = Requirement(min_vram_gb=80, gpu_count=8, regions=("sjc", "sea"))
    table = rank_offers(client, need)
    metal = verdict(table, METAL_A100, "sjc")
    assert (metal.offer.kind, metal.offer.gpu_count, metal.offer.vram_per_gpu_gb) == (
        "metal", 8, 80)
    # a volume is needed: metal is excluded whatever its stock, so its stock is not asked
    assert metal.offer.in_stock is None and metal.offer.vcpu == 128
    assert metal.offer.label == "bare metal"
    assert [r.code for r in metal.reasons] == ["metal_no_block"]
    asked = sorted((e.path, e.query.get("type")) for e in emulator.events
                   if e.path.endswith("/availability"))
    assert asked == sorted((f"/v2/regions/{r}/availability", "all") for r in ("sjc", "sea"))
    table = rank_offers(client, Requirement(min_vram_gb=80, gpu_count=8, regions=("sjc", "sea"),
                                            needs_nvme_block=False))
    assert verdict(table, METAL_A100, "sjc").offer.in_stock is True
    assert [(o.kind, o.plan_id, o.region) for o in candidates(table)] == [
        ("metal", METAL_A100, "sjc"), ("metal", METAL_H100, "sea"), ("cloud", H100_NODE, "sea")]
    emulator.set_stock("sjc", [])
    table = rank_offers(client, Requirement(min_vram_gb=80, gpu_count=8, regions=("sjc",),
                                            needs_nvme_block=False))
    assert codes(table, METAL_A100, "sjc") == ["sold_out"]


def test_one_availability_request_per_region_and_type_and_nothing_mutated(client, emulator):
    rank_offers(client, Requirement(regions=("sjc", "sea", "lax"), needs_nvme_block=False))
    asked = [(e.path, e.query.get("type")) for e in emulator.events
             if e.path.endswith("/availability")]
    assert sorted(asked) == sorted((f"/v2/regions/{r}/availability", t)
                                   for r in ("sjc", "sea", "lax") for t in ("all", "vbm"))
    assert {e.method for e in emulator.events} == {"GET"}
    assert emulator.mutations() == []


def test_max_price_filters(client):
    table = rank_offers(client, Requirement(min_vram_gb=40, max_price_per_hour=1.70,
                                            regions=("sjc", "sea", "lax")))
    assert [(o.region, o.plan_id) for o in candidates(table)] == [("sjc", L40S)]
    assert codes(table, A40_48, "sjc") == ["over_price"]
    assert "$1.71/h is over the $1.70/h maximum" in verdict(table, A40_48, "sjc").reasons[0].text


def test_model_mismatch(client):
    table = rank_offers(client, Requirement(min_vram_gb=40, gpu_model="a100",
                                            regions=("sjc", "sea", "lax")))
    assert {o.plan_id for o in candidates(table)} == {A100_80}
    assert codes(table, L40S, "sjc") == ["model_mismatch"]


def test_an_unknown_gpu_model_is_excluded_with_its_reason(client, emulator):
    plan = {"id": "vcg-x1-16c-128g-96vram", "type": "vcg", "vcpu_count": 16, "ram": 131072,
            "disk": 500, "disk_count": 1, "bandwidth": 5120, "monthly_cost": 700,
            "hourly_cost": 0.96, "locations": ["sjc"], "gpu_type": "NVIDIA_X1", "gpu_vram_gb": 96}
    emulator.state.plans[plan["id"]] = plan
    emulator.set_stock("sjc", [plan["id"], L40S])
    table = rank_offers(client, Requirement(min_vram_gb=40, regions=("sjc",)))
    v = verdict(table, plan["id"], "sjc")
    assert [r.code for r in v.reasons] == ["unknown_model"]
    assert "NVIDIA_X1" in v.reasons[0].text and v.offer.gpu_count is None
    assert [o.plan_id for o in candidates(table)] == [L40S]


def test_derivation_rules_on_records():
    def plan(**d):
        return Plan.from_api({"id": "p", "type": "vcg", **d})

    assert derive_gpus(plan(gpu_type="NVIDIA_A100", gpu_vram_gb=80), "cloud") == (1, 80, False)
    assert derive_gpus(plan(gpu_type="NVIDIA_A100", gpu_vram_gb=20), "cloud") == (1, 20, True)
    assert derive_gpus(plan(gpu_type="NVIDIA_L40S", gpu_vram_gb=96), "cloud") == (2, 48, False)
    vdm = plan(type="vdm", gpu_type="NVIDIA_H100", gpu_vram_gb=640)
    assert derive_gpus(vdm, "cloud") == (8, 80, False)
    # not a whole number of cards, less than one card on a node, unknown model, no VRAM
    assert derive_gpus(plan(type="vdm", gpu_type="NVIDIA_H100", gpu_vram_gb=600), "cloud") == (
        None, None, False)
    assert derive_gpus(plan(type="vdm", gpu_type="NVIDIA_H100", gpu_vram_gb=40), "cloud")[0] \
        is None
    assert derive_gpus(plan(gpu_type="NVIDIA_X9", gpu_vram_gb=80), "cloud")[0] is None
    assert derive_gpus(plan(gpu_type="NVIDIA_A100"), "cloud")[0] is None


@pytest.mark.parametrize(
    ("gpu_type", "vram", "fractional"),
    [("NVIDIA_A100", 10, True), ("NVIDIA_A100", 40, True), ("NVIDIA_A16", 2, True),
     ("NVIDIA_A40", 24, True), ("NVIDIA_A100", 80, False), ("NVIDIA_A16", 16, False),
     ("NVIDIA_L40S", 48, False), ("AMD_MI300X", 192, False)],
)
def test_a_vgpu_slice_is_a_vcg_plan_below_one_card(gpu_type, vram, fractional):
    """The one rule for "vGPU slice" (Plan records carry none of their own)."""
    plan = Plan.from_api({"id": "p", "type": "vcg", "gpu_type": gpu_type, "gpu_vram_gb": vram})
    assert derive_gpus(plan, "cloud")[2] is fractional


def test_price_is_hourly_cost_else_monthly_over_730(client, emulator):
    plan = {**emulator.state.plans[L40S], "id": "vcg-l40s-nohourly", "hourly_cost": None,
            "monthly_cost": 1460}
    emulator.state.plans[plan["id"]] = plan
    table = rank_offers(client, Requirement(regions=("sjc",)))
    offer = verdict(table, plan["id"], "sjc").offer
    assert (offer.price_per_hour, offer.price_source) == (2.0, "monthly_cost/730")
    assert verdict(table, L40S, "sjc").offer.price_source == "hourly_cost"


def test_an_unknown_region_is_a_config_error(client):
    with pytest.raises(ConfigError, match="unknown region id"):
        rank_offers(client, Requirement(regions=("sjc", "atlantis")))


def test_an_api_failure_raises_instead_of_an_empty_table(emulator):
    emulator.inject("GET /regions/{id}/availability", "503", count=20)
    with client_for(emulator.url, key=None) as fast, pytest.raises(TransientError) as raised:
        rank_offers(fast, Requirement(regions=("sjc",)))
    assert "503" in str(raised.value) and "/availability" in str(raised.value)


def test_requirement_from_config():
    profiles = (SimpleNamespace(min_vram_gb=40, gpu_count=1, max_gpu_count=0, gpu_model="",
                                allow_fractional=True),
                SimpleNamespace(min_vram_gb=20, gpu_count=2, max_gpu_count=4, gpu_model="H100",
                                allow_fractional=False))
    stage = SimpleNamespace(regions=("lax",), gpu=profiles[0], profiles=profiles,
                            max_price_per_hour=3.5, image=SimpleNamespace(supports_vgpu=True))
    req = Requirement.from_config(stage)
    assert (req.min_vram_gb, req.allow_fractional, req.image_supports_vgpu,
            req.max_price_per_hour, req.regions, req.max_gpu_count) == (
        40, True, True, 3.5, ("lax",), None)
    assert Requirement.from_config(stage, profiles[1]) == Requirement(
        min_vram_gb=20, gpu_count=2, max_gpu_count=4, gpu_model="H100", max_price_per_hour=3.5,
        regions=("lax",), image_supports_vgpu=True)
    assert Requirement.from_config(stage, min_vram_gb=10, regions=None).min_vram_gb == 10


# -- what the live catalogue holds beyond the document (SpareCores/sc-crawler's reading) -----

def _plan(**fields) -> Plan:
    base = {"id": "vcg-x", "type": "vcg", "vcpu_count": 8, "ram": 65536, "monthly_cost": 730,
            "hourly_cost": 1.0, "locations": ["sjc", "sea"]}
    return Plan.from_api({**base, **fields})


def test_a_dedicated_gpu_plan_without_gpu_fields_gets_them_by_its_exact_id():
    node = _plan(id="vcg-b200-248c-2826g-1536vram", type="vdm")
    assert (node.gpu_type, node.gpu_vram_gb, node.is_gpu) == ("NVIDIA_B200", 1536, True)
    assert derive_gpus(node, "cloud") == (8, 192.0, False)
    amd = _plan(id="vcg-mi355x-252c-2872g-2304vram", type="vdm")
    assert derive_gpus(amd, "cloud") == (8, 288.0, False)
    unknown = _plan(id="vcg-new-node-999vram", type="vdm")  # never parsed from its id
    assert unknown.gpu_type is None and derive_gpus(unknown, "cloud") == (None, None, False)
    told = _plan(id="vcg-b200-248c-2826g-1536vram", type="vdm", gpu_type="NVIDIA_B200",
                 gpu_vram_gb=192)
    assert told.gpu_vram_gb == 192  # the API's own fields win over the table


def test_a_region_s_own_price_and_preemptible_only_plans(client, emulator):
    plan = _plan(gpu_type="NVIDIA_L40S", gpu_vram_gb=48,
                 location_cost={"sea": {"hourly_cost": 1.25, "monthly_cost": 912.5},
                                "sjc": {"hourly_cost": 0}})
    assert plan.location_hourly == (("sea", 1.25),)
    from launcher.providers.vultr_offers import _offer
    assert (_offer("cloud", plan, "sea", True).price_per_hour,
            _offer("cloud", plan, "sea", True).price_source) == (1.25, "location_cost")
    assert _offer("cloud", plan, "sjc", True).price_source == "hourly_cost"
    spot = _plan(gpu_type="NVIDIA_L40S", gpu_vram_gb=48, deploy_ondemand=False)
    assert not _offer("cloud", spot, "sea", True).on_demand
    assert _plan(gpu_type="NVIDIA_L40S", gpu_vram_gb=48).deploy_ondemand is None
    emulator.state.plans[L40S] = {**emulator.state.plans[L40S], "deploy_ondemand": False}
    table = rank_offers(client, Requirement(min_vram_gb=40, regions=("sjc",)))
    assert "not_on_demand" in codes(table, L40S, "sjc")


def test_dedicated_plans_are_seen_whether_or_not_a_vcg_listing_holds_them(client, emulator):
    # The emulator files vdm plans under type=vcg; Vultr may not: offers asks type=all.
    table = rank_offers(client, Requirement(min_vram_gb=80, gpu_count=8, regions=("ord",),
                                            needs_nvme_block=False))
    b200 = verdict(table, "vcg-b200-248c-2826g-1536vram", "ord").offer
    assert (b200.gpu_model, b200.gpu_count, b200.vram_per_gpu_gb) == ("B200", 8, 192)
    plans_asked = {e.query.get("type") for e in emulator.events if e.path == "/v2/plans"}
    assert plans_asked == {"all"}
