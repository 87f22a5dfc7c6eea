"""The Vultr provider's private network (one long-lived VPC per region) and the resources of
an N-node run, against the emulator."""

from __future__ import annotations

import dataclasses

import pytest

from launcher.naming import instance_tags, node_label, node_tag, volume_label
from launcher.providers import InstanceRequest, VolumeRequest
from launcher.providers.vultr import CAPABILITIES, VultrProvider, run_of_volume

SNAPSHOT_ID = "5f0d2c1e-8a3b-4c6d-9e7f-0a1b2c3d4e5f"
PLAN = "vcg-a100-12c-120g-80vram"
RUN = "diffusion-20261129-100000"


@pytest.fixture
def provider(client) -> VultrProvider:
    return VultrProvider(client)


def node_request(k: int, network: str, run_id: str = RUN) -> InstanceRequest:
    tags = (*instance_tags(run_id, "diffusion", 2_000_000_000), node_tag(k))
    return InstanceRequest("sea", PLAN, SNAPSHOT_ID, node_label(run_id, k), tags,
                           user_data=b"#cloud-config\n{}\n", network_ids=(network,))


def test_vultr_offers_a_private_network():
    assert CAPABILITIES.private_network is True


def test_the_network_is_created_once_per_region_and_then_found(provider, client):
    first = provider.private_network("sea")
    assert provider.private_network("sea") == first
    other = provider.private_network("sjc")
    assert other != first
    vpcs = {v.id: v for v in client.list_vpcs()}
    assert set(vpcs) == {first, other}
    assert (vpcs[first].region, vpcs[first].description) == ("sea", "launcher-sea")


def test_a_vpc_of_the_same_description_in_another_region_is_not_taken(provider, client):
    stray = client.create_vpc("sjc", "launcher-sea")
    assert provider.private_network("sea") != stray.id


def test_an_ambiguous_network_create_makes_no_second_vpc(emulator, provider, client):
    emulator.inject("POST /vpcs", "ambiguous_create")
    vpc_id = provider.private_network("sea")
    assert [v.id for v in client.list_vpcs()] == [vpc_id]


def test_two_networks_from_a_race_resolve_to_the_first_created(emulator, provider, client):
    later = client.create_vpc("sea", "launcher-sea")
    first = client.create_vpc("sea", "launcher-sea")
    table = emulator.state.vpcs.vpcs
    table[first.id] = dataclasses.replace(table[first.id], date_created="2026-01-01T00:00:00+00:00")
    assert provider.private_network("sea") == first.id != later.id
    # created in the same second: every caller still picks the same one
    table[first.id] = dataclasses.replace(table[first.id], date_created=later.date_created)
    assert provider.private_network("sea") == min(first.id, later.id)


def test_nodes_are_attached_and_carry_their_private_address(provider, client):
    network = provider.private_network("sea")
    refs = [provider.create_instance(node_request(k, network)) for k in range(2)]
    ready = [provider.wait_instance_ready(r.id, deadline_s=30) for r in refs]
    addresses = [r.internal_ip for r in ready]
    assert all(addresses) and len(set(addresses)) == 2
    assert [v.ip_address for v in client.instance_vpcs(refs[0].id)] == [addresses[0]]
    assert [v.id for v in client.instance_vpcs(refs[1].id)] == [network]


def test_an_instance_on_no_network_has_no_internal_ip(provider):
    plain = dataclasses.replace(node_request(0, "x"), network_ids=())
    ref = provider.wait_instance_ready(provider.create_instance(plain).id, deadline_s=30)
    assert ref.internal_ip == ""


def test_the_volumes_of_every_node_belong_to_the_run(provider):
    network = provider.private_network("sea")
    for k in range(2):
        provider.create_volume(VolumeRequest("sea", 50, volume_label(node_label(RUN, k))))
        provider.create_instance(node_request(k, network))
    provider.create_volume(VolumeRequest("sea", 50, volume_label("other-20261129-100000")))
    found = provider.find_run(RUN)
    assert sorted(v.label for v in found.volumes) == [f"{RUN}-node0-cache", f"{RUN}-node1-cache"]
    assert len(found.instances) == 2
    runs = {r.run_id: r for r in provider.list_runs()}
    assert set(runs) == {RUN, "other-20261129-100000"}
    assert len(runs[RUN].volumes) == 2
    assert provider.private_network("sea") == network  # no run touches the network


@pytest.mark.parametrize(("label", "run_id"), [
    (f"{RUN}-node0-cache", RUN), (f"{RUN}-node12-cache", RUN), (f"{RUN}-cache", RUN),
    ("launcher-cache-x-node1-cache", ""), ("my-data", "")])
def test_node_volumes_name_their_run(label, run_id):
    assert run_of_volume(label) == run_id
