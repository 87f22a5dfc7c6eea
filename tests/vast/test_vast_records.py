"""Records read leniently from the documented examples."""

from __future__ import annotations

import pytest

from launcher.errors import ApiError
from launcher.secrets import Secret
from launcher.vast import CreatedInstance, Instance, LogRequest, Offer, SshKey, User

from .conftest import FAKE_VAST_KEY

# vast-ai/docs api-reference/openapi/yaml/search_offers.yaml, the response example (cut)
OFFER = {
    "id": 12345678, "ask_contract_id": 12345678, "machine_id": 88888, "host_id": 55555,
    "gpu_name": "Imaginary RTX 9999", "num_gpus": 4, "gpu_ram": 24576, "gpu_total_ram": 49152,
    "dph_base": 0.123456, "dph_total": 0.234567, "storage_cost": 0.987654,
    "storage_total_cost": 0.123456, "inet_down": 9876.5, "inet_down_cost": 0.00123,
    "inet_up": 8765.4, "inet_up_cost": 0.00456, "reliability": 0.9999, "reliability2": 0.95,
    "geolocation": "Atlantis, AT", "cuda_max_good": 11.2, "compute_cap": 900,
    "disk_space": 2048.5, "verification": "verified", "rentable": True, "rented": False,
    "is_bid": False, "min_bid": 0.111111, "direct_port_count": 42, "cpu_ram": 65536,
    "public_ipaddr": "203.0.113.42", "static_ip": True, "score": 1234.5678,
}
# show_instance.yaml, the Instance schema's examples (cut)
INSTANCE = {
    "id": 883, "actual_status": "running", "intended_status": "running",
    "cur_state": "running", "next_state": "running", "label": None,
    "image_uuid": "tensorflow/tensorflow:latest-gpu", "status_msg": None,
    "ssh_host": "ssh2281.vast.ai", "ssh_port": 10882, "machine_id": 178,
    "start_date": 1761008618.225083, "gpu_name": "RTX A5000", "num_gpus": 1,
    "disk_space": 10.0, "public_ipaddr": "63.135.50.11\n", "geolocation": "Washington, US",
    "dph_total": 0.3, "jupyter_token": "53fc448d6644aa7535c6fa5498cdbedc",
    "local_ipaddrs": "10.2.202.31 172.17.0.1 \n",
}


def test_an_offer_reads_the_documented_example():
    offer = Offer.from_api(OFFER)
    assert (offer.id, offer.machine_id, offer.num_gpus) == (12345678, 88888, 4)
    assert offer.gpu_ram_gb == 24.576 and offer.gpu_total_ram_gb == 49.152
    assert (offer.dph_total, offer.dph_base, offer.storage_cost) == (0.234567, 0.123456,
                                                                     0.987654)
    assert offer.reliability == 0.95  # reliability2 first
    assert offer.verified and offer.rentable and offer.rented is False
    assert (offer.geolocation, offer.cuda_max_good, offer.disk_space) == ("Atlantis, AT",
                                                                          11.2, 2048.5)


def test_an_offer_without_reliability2_or_totals_falls_back_without_inventing():
    offer = Offer.from_api({k: v for k, v in OFFER.items()
                            if k not in ("reliability2", "gpu_total_ram", "dph_total")})
    assert offer.reliability == 0.9999
    assert offer.gpu_total_ram_gb == 4 * 24.576
    assert offer.dph_total is None


def test_an_instance_reads_the_documented_example_and_keeps_no_token():
    instance = Instance.from_api(INSTANCE)
    assert (instance.id, instance.state, instance.is_running) == (883, "running", True)
    assert instance.public_ipaddr == "63.135.50.11"  # stripped, as vast-cli strips
    assert (instance.ssh_host, instance.ssh_port) == ("ssh2281.vast.ai", 10882)
    assert "53fc448d" not in repr(instance)


@pytest.mark.parametrize("status, state, dead", [
    (None, "provisioning", False), ("loading", "loading", False),
    ("exited", "exited", True), ("offline", "offline", True), ("unknown", "unknown", True),
])
def test_instance_states_as_hello_world_lists_them(status, state, dead):
    instance = Instance.from_api({**INSTANCE, "actual_status": status})
    assert (instance.state, instance.is_dead, instance.is_running) == (state, dead, False)


def test_a_created_instance_keeps_its_key_secret():
    """vast-ai/docs api-reference/hello-world.mdx: the create's answer."""
    made = CreatedInstance.from_answer({"success": True, "new_contract": 12345678,
                                        "instance_api_key": FAKE_VAST_KEY})
    assert made.id == 12345678 and made.instance_api_key == Secret(FAKE_VAST_KEY)
    assert FAKE_VAST_KEY not in repr(made) and not made.found_by_label


def test_a_created_instance_found_by_label_has_no_key():
    made = CreatedInstance.from_answer(INSTANCE)
    assert (made.id, made.instance_api_key, made.found_by_label) == (883, None, True)


@pytest.mark.parametrize("answer", [{"success": True}, {"new_contract": "abc"},
                                    {"new_contract": True}])
def test_a_create_answer_without_a_numeric_id_is_an_error(answer):
    with pytest.raises(ApiError, match="numeric"):
        CreatedInstance.from_answer(answer)


def test_the_user_keeps_no_api_key():
    user = User.from_api({"id": 7, "email": "a@example.com", "balance": 12.5, "credit": 3.25,
                          "username": "a", "api_key": FAKE_VAST_KEY})
    assert (user.id, user.balance, user.credit) == (7, 12.5, 3.25)
    assert FAKE_VAST_KEY not in repr(user)


@pytest.mark.parametrize("row", [
    {"id": 1, "key": "ssh-ed25519 AAAA a@b"},  # show_ssh_keys.yaml
    {"id": 1, "public_key": "ssh-ed25519 AAAA a@b"},  # create_ssh_key.yaml
    {"id": 1, "ssh_key": "ssh-ed25519 AAAA a@b"},  # vast-cli tests/cli/test_keys_commands.py
])
def test_an_ssh_key_reads_each_documented_name(row):
    assert SshKey.from_api(row).public_key == "ssh-ed25519 AAAA a@b"


def test_a_log_request_reads_its_url():
    assert LogRequest.from_api({"success": True, "result_url": "https://x/y.log"}).result_url \
        == "https://x/y.log"


@pytest.mark.parametrize("value, name", [([1], "an array"), ("x", "a string"), (None, "null")])
def test_a_record_that_is_not_an_object_is_an_api_error(value, name):
    with pytest.raises(ApiError, match=f"Vast.ai answered {name} where a Offer"):
        Offer.from_api(value)
