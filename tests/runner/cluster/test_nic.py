"""The private NIC: the metadata's ``network-type: private`` interface, named by its MAC under
the host's ``sys/class/net``."""

from __future__ import annotations

import pytest

from launcher.runner.cluster import ClusterOptions, discover, interface_named, private_interface
from launcher.runner.status import PhaseFailed

from .conftest import private_address, private_mac, v1_document


def test_the_private_interface_is_found_by_its_mac(cluster):
    node = cluster(2)[1]
    instance, nic = discover(node.ctx, node.options())
    assert instance == node.instance_id
    assert (nic.name, nic.mac, nic.address) == ("enp6s0", private_mac(1), private_address(1))


def test_a_machine_without_a_private_interface_fails_with_a_clear_reason(cluster):
    node = cluster(2, private=False)[0]
    with pytest.raises(PhaseFailed) as failed:
        discover(node.ctx, node.options())
    assert failed.value.phase == "cluster"
    assert "no private network interface" in failed.value.reason
    assert "not attached to the run's VPC" in failed.value.reason


def test_a_private_mac_no_interface_has_fails(cluster, tmp_path):
    node = cluster(2)[0]
    (node.root / "sys/class/net/enp6s0").rename(node.root / "sys/class/net/gone")
    (node.root / "sys/class/net/gone/address").write_text("02:00:00:00:00:99\n")
    with pytest.raises(PhaseFailed, match=f"no network interface has the private MAC "
                                          f"{private_mac(0)}"):
        discover(node.ctx, ClusterOptions(net_dir=node.root / "sys/class/net",
                                          metadata_deadline_s=1.0))


def test_the_entry_must_say_private_and_carry_an_address():
    document = v1_document("i-1", 0)
    assert private_interface(document) == (private_mac(0), private_address(0))
    del document["interfaces"][1]["ipv4"]["address"]
    with pytest.raises(PhaseFailed, match="has no ipv4.address"):
        private_interface(document)
    document["interfaces"][1]["network-type"] = "public"
    with pytest.raises(PhaseFailed, match="no private network interface"):
        private_interface(document)


def test_a_missing_net_dir_names_where_it_looked(tmp_path):
    with pytest.raises(PhaseFailed, match=str(tmp_path / "none")):
        interface_named(private_mac(0), tmp_path / "none")
