"""VPCs in the emulator: create/list/get/update/delete, ``attach_vpc`` on instance create, the
private interface it gives (``internal_ip``, ``/instances/{id}/vpcs``, the hypervisor's
record), and the refusals. Every exchange is also checked against the OpenAPI document."""

from __future__ import annotations

import ipaddress

import pytest

from launcher.emulator import ManualClock, Timing
from launcher.emulator.hypervisor import NoopHypervisor

from .emuclient import EMU_KEY, Api, refusal


def make_vpc(api: Api, region: str = "sea", **body) -> dict:
    response = api.post("/vpcs", {"region": region, "description": f"launcher-{region}", **body})
    assert response.status_code == 201, response.text
    return response.json()["vpc"]


def test_a_vpc_without_a_subnet_gets_a_private_one(api):
    vpc = make_vpc(api)
    net = ipaddress.IPv4Network(f"{vpc['v4_subnet']}/{vpc['v4_subnet_mask']}")
    assert net.is_private and vpc["region"] == "sea" and vpc["description"] == "launcher-sea"
    assert api.get(f"/vpcs/{vpc['id']}").json() == {"vpc": vpc}
    other = make_vpc(api, "sjc")
    assert other["v4_subnet"] != vpc["v4_subnet"]


def test_a_given_subnet_is_kept_and_a_bad_one_refused(api):
    vpc = make_vpc(api, v4_subnet="10.99.0.0", v4_subnet_mask=24)
    assert (vpc["v4_subnet"], vpc["v4_subnet_mask"]) == ("10.99.0.0", 24)
    for body in ({"v4_subnet": "10.99.0.0"}, {"v4_subnet": "8.8.8.0", "v4_subnet_mask": 24},
                 {"v4_subnet": "10.99.0.1", "v4_subnet_mask": 24}):
        assert refusal(api.post("/vpcs", {"region": "sea", **body}))[0] == 400


def test_create_needs_a_known_region(api):
    assert refusal(api.post("/vpcs", {"description": "x"})) == (
        400, "Missing required field: region.")
    assert refusal(api.post("/vpcs", {"region": "nowhere"})) == (400, "Invalid region chosen.")


def test_vpcs_are_listed_in_pages_and_renamed_and_deleted(api):
    ids = [make_vpc(api)["id"] for _ in range(3)]
    first = api.get("/vpcs", per_page=2).json()
    assert [v["id"] for v in first["vpcs"]] == ids[:2] and first["meta"]["total"] == 3
    rest = api.get("/vpcs", per_page=2, cursor=first["meta"]["links"]["next"]).json()
    assert [v["id"] for v in rest["vpcs"]] == ids[2:]
    assert api.call("PUT", f"/vpcs/{ids[0]}", json={"description": "renamed"}).status_code == 204
    assert api.get(f"/vpcs/{ids[0]}").json()["vpc"]["description"] == "renamed"
    assert api.delete(f"/vpcs/{ids[0]}").status_code == 204
    assert refusal(api.get(f"/vpcs/{ids[0]}")) == (404, "Invalid VPC ID.")
    assert refusal(api.delete(f"/vpcs/{ids[0]}")) == (404, "Invalid VPC ID.")


def test_attached_instances_get_unique_addresses_on_the_vpc_subnet(api):
    vpc = make_vpc(api)
    net = ipaddress.IPv4Network(f"{vpc['v4_subnet']}/{vpc['v4_subnet_mask']}")
    nodes = [api.create_instance(label=f"n{k}", attach_vpc=[vpc["id"]]) for k in range(3)]
    addresses = [n["internal_ip"] for n in nodes]
    assert len(set(addresses)) == 3
    assert all(ipaddress.IPv4Address(a) in net for a in addresses)
    listed = api.get(f"/instances/{nodes[0]['id']}/vpcs").json()
    assert [(v["id"], v["ip_address"]) for v in listed["vpcs"]] == [(vpc["id"], addresses[0])]
    assert listed["vpcs"][0]["mac_address"].startswith("5a:00:")
    assert listed["meta"]["total"] == 1


def test_an_instance_without_a_vpc_has_none(api):
    inst = api.create_instance()
    assert inst["internal_ip"] == ""
    assert api.get(f"/instances/{inst['id']}/vpcs").json()["vpcs"] == []


def test_internal_ip_shows_once_the_instance_is_active(make_emulator):
    clock = ManualClock(start=1000.0)
    emu = make_emulator(api_key=EMU_KEY, timing=Timing.realistic(), clock=clock)
    api = Api(emu.url)
    vpc = make_vpc(api)
    inst = api.create_instance(attach_vpc=[vpc["id"]])
    assert inst["status"] == "pending" and inst["internal_ip"] == ""
    clock.advance(Timing.realistic().instance_active_s)
    shown = api.get(f"/instances/{inst['id']}").json()["instance"]
    assert shown["status"] == "active" and shown["internal_ip"].startswith("10.")


def test_an_unknown_or_foreign_vpc_is_refused_and_nothing_is_created(api):
    foreign = make_vpc(api, "sjc")
    assert refusal(api.post("/instances", _instance_body(attach_vpc=["no-such"]))) == (
        400, "Invalid VPC ID.")
    status, text = refusal(api.post("/instances", _instance_body(attach_vpc=[foreign["id"]])))
    assert status == 400 and foreign["id"] in text and "sea" in text
    assert api.get("/instances").json()["instances"] == []


def test_a_vpc_with_instances_cannot_be_deleted_until_they_are_gone(api):
    vpc = make_vpc(api)
    inst = api.create_instance(attach_vpc=[vpc["id"]])
    status, text = refusal(api.delete(f"/vpcs/{vpc['id']}"))
    assert status == 400
    assert text == f"The following servers are attached to this VPC network: {inst['main_ip']}"
    assert api.delete(f"/instances/{inst['id']}").status_code == 204
    assert api.delete(f"/vpcs/{vpc['id']}").status_code == 204


def test_a_deleted_instance_frees_its_address(api):
    vpc = make_vpc(api)
    first = api.create_instance(attach_vpc=[vpc["id"]])
    api.delete(f"/instances/{first['id']}")
    again = api.create_instance(attach_vpc=[vpc["id"]])
    assert again["internal_ip"] == first["internal_ip"]


class Recorder(NoopHypervisor):
    def __init__(self) -> None:
        self.created = []

    def instance_created(self, instance) -> None:
        self.created.append(instance)


def test_the_hypervisor_sees_the_private_interface(make_emulator):
    hypervisor = Recorder()
    api = Api(make_emulator(api_key=EMU_KEY, hypervisor=hypervisor).url)
    vpc = make_vpc(api, v4_subnet="10.1.112.0", v4_subnet_mask=20)
    inst = api.create_instance(attach_vpc=[vpc["id"]])
    (nic,) = hypervisor.created[0].private
    listed = api.get(f"/instances/{inst['id']}/vpcs").json()["vpcs"][0]
    assert (nic.vpc_id, nic.mac, nic.address) == (vpc["id"], listed["mac_address"],
                                                  listed["ip_address"])
    assert nic.netmask == "255.255.240.0" and nic.address == inst["internal_ip"]


def _instance_body(**overrides) -> dict:
    return {"region": "sea", "plan": "vcg-a100-6c-60g-40vram",
            "snapshot_id": "5f0d2c1e-8a3b-4c6d-9e7f-0a1b2c3d4e5f", "label": "x", **overrides}


@pytest.mark.parametrize("value", ["v-1", [1, 2]])
def test_attach_vpc_must_be_a_list_of_ids(api, value):
    assert refusal(api.post("/instances", _instance_body(attach_vpc=value))) == (
        400, "Invalid attach_vpc.")
