"""Where a Vast container's SSH answers, read from the instance record as vast-cli's
``_ssh_url`` reads it (vastai/cli/commands/misc.py): the public address at the host port of
``ports["22/tcp"]``, else ``ssh_host``:``ssh_port`` (+1 for a Jupyter runtype)."""

from __future__ import annotations

import pytest

from launcher.providers.vast import RUNTYPE, instance_ref
from launcher.vast import Instance, InstanceSpec

# show_instance.yaml's example (cut) and show_instances.yaml's ``ports`` example
PROXY = {"id": 883, "actual_status": "running", "num_gpus": 1, "label": "x",
         "ssh_host": "ssh2281.vast.ai", "ssh_port": 10882, "public_ipaddr": "63.135.50.11\n",
         "image_runtype": "ssh ssh_direc ssh_proxy"}
PORTS = {"8888/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8888"}],
         "22/tcp": [{"HostIp": "0.0.0.0", "HostPort": "20000"}]}


def test_the_ports_are_read_as_show_instances_shows_them():
    record = Instance.from_api({**PROXY, "ports": PORTS})
    assert record.ports == (("8888/tcp", 8888), ("22/tcp", 20000))
    assert record.host_port("22/tcp") == 20000 and record.host_port("80/tcp") is None


@pytest.mark.parametrize("ports", [
    None, [8080, 8081], {"22/tcp": []}, {"22/tcp": [{"HostPort": "ssh"}]},
    {"22/tcp": [{"HostPort": "70000"}]}, {"22/tcp": "20000"},
])
def test_ports_of_another_shape_publish_nothing(ports):
    assert Instance.from_api({**PROXY, "ports": ports}).ports == ()


def test_a_direct_mapping_is_the_public_address_at_its_host_port():
    ref = instance_ref(Instance.from_api({**PROXY, "ports": PORTS}))
    assert (ref.address, ref.ssh_host, ref.ssh_port) == ("63.135.50.11", "63.135.50.11", 20000)


def test_without_one_it_is_vasts_ssh_proxy():
    ref = instance_ref(Instance.from_api(PROXY))
    assert (ref.ssh_host, ref.ssh_port) == ("ssh2281.vast.ai", 10882)


def test_a_jupyter_runtypes_proxy_ssh_is_the_next_port():
    ref = instance_ref(Instance.from_api({**PROXY, "image_runtype": "jupyter_proxy ssh_proxy"}))
    assert (ref.ssh_host, ref.ssh_port) == ("ssh2281.vast.ai", 10883)


def test_an_instance_with_neither_yet_leaves_it_to_its_address():
    ref = instance_ref(Instance.from_api({"id": 1, "num_gpus": 1, "actual_status": "loading"}))
    assert (ref.ssh_host, ref.ssh_port) == ("", 22)


def test_the_launcher_asks_for_direct_ssh():
    assert RUNTYPE == "ssh_direct"
    assert InstanceSpec(image="i", label="l", runtype=RUNTYPE).body()["runtype"] == "ssh_direct"
