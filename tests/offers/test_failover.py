"""FailoverPlan: walk the candidates, recording why each refused offer was skipped."""

from __future__ import annotations

import pytest

from launcher.errors import OutOfCapacityError
from launcher.providers.offers import Requirement, candidates
from launcher.providers.vultr_offers import rank_offers
from launcher.provision.failover import FailoverPlan


def test_walks_the_candidates_and_records_what_was_tried(client):
    offers = candidates(rank_offers(client, Requirement(min_vram_gb=40)))
    plan = FailoverPlan(offers)
    assert plan.current == offers[0] and plan.remaining == tuple(offers)
    refusal = OutOfCapacityError("Plan is not available in the selected region.",
                                 method="POST", path="/instances", status=400)
    nxt = plan.next_after_capacity_error(offers[0], refusal)
    assert nxt == offers[1] == plan.current
    assert plan.tried[0].offer == offers[0]
    assert plan.tried[0].reason == str(refusal)
    assert plan.tried[0].as_row() == {
        "plan": offers[0].plan_id, "region": offers[0].region,
        "price": f"${offers[0].price_per_hour:.2f}/h", "why skipped": str(refusal)}
    for offer in offers[1:]:
        plan.next_after_capacity_error(offer, "sold out\nsecond line dropped")
    assert plan.exhausted and plan.current is None and plan.remaining == ()
    assert [s.offer for s in plan.tried] == offers
    assert plan.tried[-1].reason == "sold out"
    assert plan.summary().startswith(f"all {len(offers)} candidate offers were refused")


def test_only_the_current_offer_can_be_skipped(client):
    offers = candidates(rank_offers(client, Requirement(min_vram_gb=40)))
    plan = FailoverPlan(offers)
    with pytest.raises(ValueError, match="not the current offer"):
        plan.next_after_capacity_error(offers[1], "sold out")
    assert plan.tried == ()


def test_an_empty_plan_is_exhausted_from_the_start():
    plan = FailoverPlan([])
    assert plan.exhausted and plan.current is None
    assert plan.summary() == "no candidate offer to try"
