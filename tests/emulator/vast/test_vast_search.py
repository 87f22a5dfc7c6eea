"""POST /bundles/: operators, defaults, ordering, limit, pricing at allocated_storage."""

from __future__ import annotations

import pytest

from tests.emulator.vast.conftest import call, rent

DEFAULTS = {"verified": {"eq": True}, "external": {"eq": False}, "rentable": {"eq": True},
            "rented": {"eq": False}}


def search(emu, **query):
    status, body, headers = call(f"{emu.url}/bundles/", "POST", query)
    assert status == 200, body
    assert headers["Content-Type"] == "application/json"
    return body["offers"]


def test_every_offer_has_the_fields_clients_rank_on(vast):
    offers = search(vast, **DEFAULTS)
    assert len(offers) == 16
    for offer in offers:
        assert offer["id"] == offer["ask_contract_id"]
        assert " " in offer["gpu_name"] or offer["gpu_name"] in ("L40S", "H200")
        assert offer["gpu_total_ram"] == offer["gpu_ram"] * offer["num_gpus"]
        assert offer["num_gpus"] in (1, 2, 4, 8)
        assert ", " in offer["geolocation"]
        for field in ("dph_total", "reliability2", "inet_down", "disk_space", "cuda_max_good"):
            assert isinstance(offer[field], float)


@pytest.mark.parametrize(("query", "check"), [
    ({"gpu_name": {"eq": "A100 SXM4"}}, lambda o: o["gpu_name"] == "A100 SXM4"),
    ({"gpu_name": {"in": ["RTX_4090", "L40S"]}}, lambda o: o["gpu_name"] in ("RTX 4090", "L40S")),
    ({"gpu_name": {"neq": "H100 SXM"}}, lambda o: o["gpu_name"] != "H100 SXM"),
    ({"num_gpus": {"gte": 4}}, lambda o: o["num_gpus"] >= 4),
    ({"num_gpus": {"lt": 2}}, lambda o: o["num_gpus"] == 1),
    ({"gpu_ram": {"gt": 80000}}, lambda o: o["gpu_ram"] > 80000),
    ({"dph_total": {"lte": 0.5}}, lambda o: o["dph_total"] <= 0.5),
    ({"reliability": {"gte": 0.997}}, lambda o: o["reliability"] >= 0.997),
    ({"inet_down": {"gt": 5000}}, lambda o: o["inet_down"] > 5000),
    ({"disk_space": {"gte": 1000}}, lambda o: o["disk_space"] >= 1000),
    ({"geolocation": {"in": ["US", "CA"]}}, lambda o: o["geolocation"][-2:] in ("US", "CA")),
    ({"geolocation": {"notin": ["TW", "SE"]}}, lambda o: o["geolocation"][-2:] not in ("TW", "SE")),
    ({"geolocation": {"eq": "Texas, US"}}, lambda o: o["geolocation"] == "Texas, US"),
])
def test_each_operator_filters(vast, query, check):
    offers = search(vast, **DEFAULTS, **query)
    assert offers and all(check(o) for o in offers)
    everything = search(vast, **DEFAULTS)
    assert len([o for o in everything if check(o)]) == len(offers)


def test_order_limit_and_type(vast):
    cheap = search(vast, **DEFAULTS, order=[["dph_total", "asc"]], limit=3)
    assert len(cheap) == 3 and [o["dph_total"] for o in cheap] == sorted(o["dph_total"]
                                                                         for o in cheap)
    assert cheap[0]["dph_total"] == min(o["dph_total"] for o in search(vast, **DEFAULTS))
    by_gpus = search(vast, **DEFAULTS, order=[["num_gpus", "desc"], ["dph_total", "asc"]])
    keys = [(-o["num_gpus"], o["dph_total"]) for o in by_gpus]
    assert keys == sorted(keys)
    bids = search(vast, **DEFAULTS, type="bid", order=[["dph_total", "asc"]], limit=1)
    assert bids[0]["is_bid"] is True and bids[0]["dph_total"] < cheap[0]["dph_total"]


def test_dph_total_is_priced_at_allocated_storage(vast):
    one = search(vast, id={"eq": 10_000_009}, allocated_storage=8)[0]
    big = search(vast, id={"eq": 10_000_009}, allocated_storage=728)[0]
    assert big["dph_total"] - one["dph_total"] == pytest.approx(one["storage_cost"] * 720 / 720)
    assert one["dph_total"] == pytest.approx(one["dph_base"] + one["storage_cost"] * 8 / 720)


def test_a_rented_machine_leaves_the_default_search_until_destroyed(vast):
    created = rent(vast, 10_000_009)
    assert 10_000_009 not in [o["id"] for o in search(vast, **DEFAULTS)]
    assert 10_000_009 in [o["id"] for o in search(vast, rented={"eq": True})]
    assert call(f"{vast.url}/instances/{created['new_contract']}/", "DELETE")[0] == 200
    assert 10_000_009 in [o["id"] for o in search(vast, **DEFAULTS)]


@pytest.mark.parametrize("query", [
    {"no_such_field": {"eq": 1}}, {"num_gpus": {"about": 2}}, {"num_gpus": 2},
    {"gpu_name": {"in": "RTX 4090"}}, {"order": [["nope", "asc"]]}, {"type": "spot"},
    {"limit": "ten"},
])
def test_bad_queries_are_400_in_vasts_envelope(vast, query):
    status, body, _ = call(f"{vast.url}/bundles/", "POST", query)
    assert status == 400
    assert body["success"] is False and body["error"] == "invalid_request" and body["msg"]
