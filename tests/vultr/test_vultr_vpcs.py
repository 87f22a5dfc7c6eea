"""The VPC calls of the client, against the stub server: what is sent, what is read, and how an
ambiguous create is settled (by description and region, never a second VPC)."""

from __future__ import annotations

import pytest

from launcher.errors import AmbiguousCreateError, ConfigError, InvalidRequestError
from launcher.vultr import Instance, InstanceSpec, InstanceVpc, Vpc

VPC = {"id": "v-1", "region": "ewr", "description": "launcher-ewr", "v4_subnet": "10.1.112.0",
       "v4_subnet_mask": 20, "date_created": "2026-12-01T10:00:00+00:00"}


def listing(key: str, *items: dict, next_cursor: str = "") -> dict:
    return {key: list(items),
            "meta": {"total": len(items), "links": {"next": next_cursor, "prev": ""}}}


def test_create_sends_region_and_description_and_reads_the_vpc(stub, client):
    stub.add("POST", "/vpcs", stub.Reply(201, {"vpc": VPC}))
    vpc = client.create_vpc("ewr", "launcher-ewr")
    assert vpc == Vpc("v-1", "ewr", "launcher-ewr", "10.1.112.0", 20,
                      "2026-12-01T10:00:00+00:00")
    assert stub.received[0].json() == {"region": "ewr", "description": "launcher-ewr"}


def test_create_with_a_subnet_sends_both_halves(stub, client):
    stub.add("POST", "/vpcs", stub.Reply(201, {"vpc": VPC}))
    client.create_vpc("ewr", "d", v4_subnet="10.99.0.0", v4_subnet_mask=24)
    assert stub.received[0].json() == {"region": "ewr", "description": "d",
                                       "v4_subnet": "10.99.0.0", "v4_subnet_mask": 24}


@pytest.mark.parametrize("subnet", [{"v4_subnet": "10.0.0.0"}, {"v4_subnet_mask": 24}])
def test_half_a_subnet_is_refused_before_sending(stub, client, subnet):
    with pytest.raises(ConfigError, match="both"):
        client.create_vpc("ewr", "d", **subnet)
    assert stub.received == []


def test_an_ambiguous_create_is_resolved_by_description_and_region(stub, client):
    stub.add("POST", "/vpcs", stub.error(502, "bad gateway"))
    other_region = {**VPC, "id": "v-9", "region": "sjc"}
    stub.add("GET", "/vpcs", stub.Reply(200, listing("vpcs", other_region, VPC)))
    assert client.create_vpc("ewr", "launcher-ewr").id == "v-1"
    assert len(stub.calls("POST", "/vpcs")) == 1


def test_an_ambiguous_create_that_finds_nothing_is_sent_again(stub, client):
    stub.add("POST", "/vpcs", stub.error(500, "boom"), stub.Reply(201, {"vpc": VPC}))
    stub.add("GET", "/vpcs", stub.Reply(200, listing("vpcs")))
    assert client.create_vpc("ewr", "launcher-ewr").id == "v-1"
    assert len(stub.calls("POST", "/vpcs")) == 2


def test_an_ambiguous_create_finding_two_is_an_error_not_a_guess(stub, client):
    stub.add("POST", "/vpcs", stub.error(500, "boom"))
    stub.add("GET", "/vpcs", stub.Reply(200, listing("vpcs", VPC, {**VPC, "id": "v-2"})))
    with pytest.raises(AmbiguousCreateError, match="2 resources match"):
        client.create_vpc("ewr", "launcher-ewr")


def test_list_follows_pages_and_get_reads_one(stub, client):
    second = {**VPC, "id": "v-2"}
    pages = iter([listing("vpcs", VPC, next_cursor="c2"), listing("vpcs", second)])
    stub.add("GET", "/vpcs", lambda r: stub.Reply(200, next(pages)))
    assert [v.id for v in client.list_vpcs()] == ["v-1", "v-2"]
    assert stub.received[1].query["cursor"] == ["c2"]
    stub.add("GET", "/vpcs/v-2", stub.Reply(200, {"vpc": second}))
    assert client.get_vpc("v-2").id == "v-2"


def test_delete_of_a_gone_vpc_is_success(stub, client):
    stub.add("DELETE", "/vpcs/v-1", stub.Reply(204), stub.error(404, "Invalid VPC ID."))
    assert client.delete_vpc("v-1") is True
    assert client.delete_vpc("v-1") is False


def test_delete_refused_while_instances_are_attached_raises(stub, client):
    stub.add("DELETE", "/vpcs/v-1", stub.error(
        400, "The following servers are attached to this VPC network: 192.0.2.10"))
    with pytest.raises(InvalidRequestError, match="attached to this VPC network"):
        client.delete_vpc("v-1")


def test_instance_vpcs_are_typed(stub, client):
    item = {"id": "v-1", "mac_address": "5a:00:01:02:03:04", "ip_address": "10.1.112.3"}
    stub.add("GET", "/instances/i-1/vpcs", stub.Reply(200, listing("vpcs", item)))
    assert client.instance_vpcs("i-1") == (InstanceVpc("v-1", "5a:00:01:02:03:04",
                                                       "10.1.112.3"),)


def test_attach_vpc_is_sent_only_when_given():
    base = {"region": "ewr", "plan": "p", "label": "l", "snapshot_id": "s"}
    assert "attach_vpc" not in InstanceSpec(**base).body()
    assert InstanceSpec(**base, attach_vpc=["v-1"]).body()["attach_vpc"] == ["v-1"]
    with pytest.raises(ConfigError):
        InstanceSpec(**base, attach_vpc=("",))


def test_internal_ip_is_read_and_empty_when_absent():
    assert Instance.from_api({"id": "i", "internal_ip": "10.1.112.3"}).internal_ip == "10.1.112.3"
    assert Instance.from_api({"id": "i"}).internal_ip == ""
