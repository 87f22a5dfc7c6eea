"""The private interface in the sandbox's ``/v1.json``, read the way cloud-init's Vultr
datasource reads it (canonical/cloud-init cloudinit/sources/helpers/vultr.py), from an
emulated instance on a VPC to the document a machine fetches."""

from __future__ import annotations

import ipaddress

import pytest
import requests

from launcher.emulator.hypervisor import NoopHypervisor
from launcher.runner.cluster import private_interface as runner_reads
from launcher.sandbox.metadata import (
    MetadataServer,
    private_interface,
    private_interfaces,
    vultr_v1,
)

from .emuclient import EMU_KEY, Api

# The private entry of VULTR_V1_2 in canonical/cloud-init tests/unittests/sources/test_vultr.py
# (network ids left out: they name that test's networks).
CLOUD_INIT_PRIVATE = {
    "ipv4": {"additional": [], "address": "10.1.112.3", "gateway": "",
             "netmask": "255.255.240.0"},
    "ipv6": {"additional": [], "network": "", "prefix": ""},
    "mac": "5a:00:03:1b:4e:ca",
    "network-type": "private",
}


def cloud_init_static_subnets(interfaces: list[dict]) -> list[tuple[str, str, str]]:
    """What cloud-init's ``generate_network_config`` configures for the entries after the
    first: ``(mac, address, netmask)`` of each; its lookups, in its order, so a missing key
    fails here as it fails there (``generate_interface`` reads ``mac`` and
    ``ipv4.address``/``netmask``; ``generate_interface_additional_addresses`` takes
    ``len`` of ``ipv4.additional`` and ``ipv6.additional`` before any check)."""
    found = []
    for interface in interfaces[1:]:
        if interface.get("unconfigured"):
            continue
        subnet = (interface["mac"], interface["ipv4"]["address"], interface["ipv4"]["netmask"])
        assert len(interface["ipv4"]["additional"]) == 0
        assert len(interface["ipv6"]["additional"]) == 0
        found.append(subnet)
    return found


def test_the_entry_has_cloud_init_s_shape():
    entry = private_interface("5A:00:03:1B:4E:CA", "10.1.112.3", "255.255.240.0", "v-1")
    assert {k: v for k, v in entry.items() if k != "network-v2-id"} == CLOUD_INIT_PRIVATE
    assert entry["network-v2-id"] == "v-1"


def test_a_vm_document_lists_it_after_the_public_interface():
    private = private_interface("5a:00:00:00:00:01", "10.1.112.3", "255.255.240.0")
    doc = vultr_v1("i-1", region="sea", hostname="h", mac="52:54:00:aa:00:01",
                   user_data="#cloud-config\n", private=[private])
    assert doc["interfaces"][0]["network-type"] == "public"
    assert cloud_init_static_subnets(doc["interfaces"]) == [
        ("5a:00:00:00:00:01", "10.1.112.3", "255.255.240.0")]


class Recorder(NoopHypervisor):
    def __init__(self) -> None:
        self.created = []

    def instance_created(self, instance) -> None:
        self.created.append(instance)


@pytest.fixture
def metadata():
    server = MetadataServer()
    yield server
    server.stop()


def test_an_emulated_node_s_document_serves_its_vpc_address(make_emulator, metadata):
    hypervisor = Recorder()
    api = Api(make_emulator(api_key=EMU_KEY, hypervisor=hypervisor).url)
    vpc = api.post("/vpcs", {"region": "sea", "description": "launcher-sea"}).json()["vpc"]
    inst = api.create_instance(attach_vpc=[vpc["id"]])
    record = hypervisor.created[0]
    url = metadata.url_for(record.id, record.region, record.hostname,
                           interfaces=private_interfaces(record.private))
    doc = requests.get(url + "/v1.json", timeout=5).json()
    (entry,) = doc["interfaces"]
    mac, address, netmask = cloud_init_static_subnets([{}, entry])[0]
    listed = api.get(f"/instances/{inst['id']}/vpcs").json()["vpcs"][0]
    assert (mac, address) == (listed["mac_address"], listed["ip_address"]) == runner_reads(doc)
    net = ipaddress.IPv4Network(f"{vpc['v4_subnet']}/{vpc['v4_subnet_mask']}")
    assert str(net.netmask) == netmask and ipaddress.IPv4Address(address) in net
    assert entry["network-v2-id"] == vpc["id"]


def test_a_machine_on_no_vpc_lists_no_interface(metadata):
    url = metadata.url_for("i-2", "sea", "h")
    assert requests.get(url + "/v1.json", timeout=5).json()["interfaces"] == []
