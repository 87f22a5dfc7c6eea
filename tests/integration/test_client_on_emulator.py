"""The API layer against the emulator: the two halves agree on Vultr's API.

Every exchange here is also checked against Vultr's OpenAPI document (tests/conftest.py).
"""

from __future__ import annotations

import base64

import pytest
from conftest import client_for

from launcher.emulator import ManualClock, Timing
from launcher.errors import (
    AuthError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    OutOfCapacityError,
)
from launcher.providers.vultr_offers import derive_gpus
from launcher.vultr import BlockSpec, InstanceSpec

SNAPSHOT_ID = "5f0d2c1e-8a3b-4c6d-9e7f-0a1b2c3d4e5f"
A100_40 = "vcg-a100-6c-60g-40vram"


def spec(label: str = "run-1", region: str = "sea", plan: str = A100_40) -> InstanceSpec:
    return InstanceSpec(region, plan, label, snapshot_id=SNAPSHOT_ID, tags=("launcher", "run:1"),
                        user_data="#cloud-config\n{}\n")


def test_gpu_catalogue_and_stock(client):
    plans = {p.id: p for p in client.list_plans(type="vcg")}
    assert plans and all(p.is_gpu for p in plans.values())
    assert {p.gpu_type for p in plans.values() if p.gpu_vram_gb and p.gpu_vram_gb >= 40}
    assert any(p.is_whole_node for p in plans.values())
    assert any(derive_gpus(p, "cloud")[2] for p in plans.values())  # vGPU slices
    metal = client.list_metal_plans()
    assert any(m.is_gpu for m in metal)
    regions = {r.id: r for r in client.list_regions()}
    assert {"sjc", "sea", "lax", "ewr"} <= set(regions)
    assert regions["sjc"].supports_nvme_block and not regions["nrt"].supports_nvme_block
    assert A100_40 not in client.region_availability("sjc").available_plans
    assert A100_40 in client.region_availability("sea").available_plans


def test_reading_the_catalogue_mutates_nothing(emulator, client):
    client.list_plans()
    client.list_regions()
    client.region_availability("lax")
    assert len(emulator.events) == 3 and emulator.mutations() == []


def test_launch_attach_and_teardown(emulator, client):
    block = client.create_block(BlockSpec("sea", 1000, "run-1"))
    instance = client.create_instance(spec())
    assert client.wait_instance_ready(instance.id).is_ready
    sent = emulator.state.get_instance(instance.id).user_data
    assert base64.b64decode(sent) == b"#cloud-config\n{}\n"
    assert [i.id for i in client.list_instances(tag="run:1")] == [instance.id]
    client.attach_block(block.id, instance.id, live=True)
    assert client.get_block(block.id).attached_to == instance.id
    with pytest.raises(InvalidRequestError, match="Detach it first"):
        client.delete_block(block.id)
    client.detach_block(block.id, live=True)
    client.detach_block(block.id, live=True)  # "... is not currently attached ...": done
    assert client.delete_block(block.id) is True
    assert client.delete_instance(instance.id) is True
    assert client.delete_instance(instance.id) is False  # already gone is success
    with pytest.raises(NotFoundError):
        client.get_instance(instance.id)


def test_attach_to_a_booting_instance_is_a_conflict_until_it_unlocks(make_emulator):
    clock = ManualClock()
    emu = make_emulator(timing=Timing.realistic(), clock=clock)
    with client_for(emu.url) as client:
        block = client.create_block(BlockSpec("sea", 100, "run-1"))
        instance = client.create_instance(spec())
        with pytest.raises(ConflictError, match="locked"):
            client.attach_block(block.id, instance.id)
        clock.advance(10)
        client.attach_block(block.id, instance.id)
        # Accepted, shown a moment later: attaching is asynchronous (vultr-csi reads back).
        assert client.get_block(block.id).attached_to is None
        clock.advance(Timing.realistic().attach_visible_s)
        assert client.get_block(block.id).attached_to == instance.id


@pytest.mark.parametrize("error", ["instance_invalid_id", "instance_pending_destruction"])
def test_an_instance_gone_in_vultr_s_400_wordings_is_gone(emulator, client, error):
    instance = client.create_instance(spec())
    emulator.inject("DELETE /instances/{id}", "refuse", status=400, error=error)
    assert client.delete_instance(instance.id) is False  # gone is success, in any wording
    emulator.inject("GET /instances/{id}", "refuse", status=400, error=error)
    with pytest.raises(NotFoundError):
        client.get_instance(instance.id)


def test_refusals_map_to_what_the_caller_should_do(client):
    with pytest.raises(OutOfCapacityError):
        client.create_instance(spec(region="sjc"))  # listed for sjc, sold out there
    with pytest.raises(InvalidRequestError, match="Invalid plan"):
        client.create_instance(spec(plan="vcg-nonexistent"))
    block = client.create_block(BlockSpec("lax", 100, "far-away"))
    instance = client.create_instance(spec())
    with pytest.raises(InvalidRequestError, match="same region"):
        client.attach_block(block.id, instance.id)


def test_pagination_walks_more_than_a_hundred_items(emulator, client):
    for n in range(130):
        emulator.state.create_block("ewr", 10, f"vol-{n:03d}", "high_perf")
    blocks = client.list_blocks()
    assert sorted(b.label for b in blocks) == [f"vol-{n:03d}" for n in range(130)]
    pages = [e for e in emulator.events if e.route == "/blocks" and e.method == "GET"]
    assert len(pages) == 2 and pages[1].query.get("cursor")
    small = list(client.http.paginate("/blocks", "blocks", per_page=25))
    assert len({b["id"] for b in small}) == 130


def test_wrong_key_gets_the_allowlist_hint_and_never_the_key(emulator, fake_vultr_key):
    with client_for(emulator.url, key="not-" + fake_vultr_key) as client, \
            pytest.raises(AuthError) as caught:
        client.get_account()
    text = str(caught.value)
    assert "HTTP 401" in text and "Access Control" in text and "allowlist" in text
    assert fake_vultr_key not in text and "not-" not in text
    assert emulator.mutations() == []
