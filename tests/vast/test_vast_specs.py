"""OfferQuery and InstanceSpec: the bodies vast-cli sends, and the limits checked locally."""

from __future__ import annotations

import pytest

from launcher.errors import ConfigError
from launcher.vast import InstanceSpec, OfferQuery

from .conftest import FAKE_VAST_KEY


def test_the_default_search_body_is_vast_clis():
    """vast-ai/vast-cli vastai/api/offers.py search_offers: the four default filters, order
    [["score", "desc"]], type "on-demand", limit, allocated_storage 5.0."""
    assert OfferQuery().body() == {
        "verified": {"eq": True}, "external": {"eq": False}, "rentable": {"eq": True},
        "rented": {"eq": False}, "order": [["score", "desc"]], "type": "on-demand",
        "limit": 64, "allocated_storage": 5.0,
    }


def test_filters_take_operators_bare_values_and_tuples_and_override_the_defaults():
    query = OfferQuery(
        filters={"gpu_name": ("A100 SXM4", "H100 SXM"), "num_gpus": 1,
                 "gpu_ram": {"gte": 80000}, "verified": {"eq": False}},
        order=(("dph_total", "asc"),), limit=None, allocated_storage=40, type="bid")
    body = query.body()
    assert body["gpu_name"] == {"in": ["A100 SXM4", "H100 SXM"]}
    assert body["num_gpus"] == {"eq": 1}
    assert body["gpu_ram"] == {"gte": 80000}
    assert body["verified"] == {"eq": False}
    assert body["order"] == [["dph_total", "asc"]]
    assert (body["type"], body["allocated_storage"]) == ("bid", 40)
    assert "limit" not in body


@pytest.mark.parametrize("options, words", [
    ({"type": "ondemand"}, "offer type"),
    ({"limit": 0}, "limit"),
    ({"allocated_storage": 0}, "allocated_storage"),
    ({"order": (("dph_total", "up"),)}, "asc"),
    ({"filters": {"num_gpus": {"approx": 1}}}, "operators"),
    ({"filters": {"num_gpus": {}}}, "operators"),
])
def test_a_bad_query_is_refused_before_sending(options, words):
    with pytest.raises(ConfigError, match=words):
        OfferQuery(**options)


def spec(**options) -> InstanceSpec:
    return InstanceSpec(**{"image": "pytorch/pytorch:2.4.0", "label": "run-42", **options})


def test_the_create_body_carries_vast_clis_keys():
    """vast-ai/vast-cli vastai/api/instances.py create_instance: client_id "me", image, env
    as a JSON object, disk, label, onstart, cancel_unavail; runtype and args only when set."""
    body = spec(disk_gb=40, env={"RUN_ID": "42"}, onstart="echo hi").body()
    assert body == {"client_id": "me", "image": "pytorch/pytorch:2.4.0",
                    "env": {"RUN_ID": "42"}, "disk": 40, "label": "run-42",
                    "onstart": "echo hi", "cancel_unavail": True}
    body = spec(runtype="ssh_direct", args=("bash", "-c", "true")).body()
    assert body["runtype"] == "ssh_direct" and body["args"] == ["bash", "-c", "true"]
    assert body["onstart"] is None


def test_disk_must_be_at_least_8_gb():
    """create_instance.yaml x-input-validation: disk min 8.0."""
    assert spec(disk_gb=8).disk_gb == 8
    with pytest.raises(ConfigError, match="at least 8 GB"):
        spec(disk_gb=7.9)


def test_args_and_onstart_take_4096_characters_in_all():
    """create_instance.yaml x-input-validation: args max_length 4096, "Combined length of
    args, args_str and onstart"."""
    spec(onstart="x" * 4090, args=("abc", "def"))
    with pytest.raises(ConfigError, match="4097 characters"):
        spec(onstart="x" * 4091, args=("abc", "def"))
    with pytest.raises(ConfigError, match="4096"):
        spec(onstart="y" * 4097)


@pytest.mark.parametrize("options, words", [
    ({"label": ""}, "label"),
    ({"label": "l" * 257}, "256"),
    ({"image": ""}, "image"),
    ({"runtype": "telnet"}, "runtype"),
    ({"env": {"1BAD": "x"}}, "not a valid name"),
    ({"env": {"-p 8000:8000": "1"}}, "not a valid name"),
    ({"env": {"N": 3}}, "must be a string"),
    ({"env": {"LONG": "v" * 252}}, "257 characters"),
    ({"env": {f"V{i}": "v" * 250 for i in range(140)}}, "the environment is"),
])
def test_a_bad_spec_is_refused_before_sending(options, words):
    with pytest.raises(ConfigError, match=words):
        spec(**options)


def test_the_label_may_be_256_characters():
    assert len(spec(label="l" * 256).label) == 256


def test_env_values_and_onstart_never_show_in_the_repr_or_errors():
    shown = repr(spec(env={"B2_KEY": FAKE_VAST_KEY}, onstart=f"echo {FAKE_VAST_KEY}"))
    assert FAKE_VAST_KEY not in shown and "run-42" in shown
    with pytest.raises(ConfigError) as caught:
        spec(env={"B2_KEY": FAKE_VAST_KEY + "x" * 300})
    assert FAKE_VAST_KEY not in str(caught.value) and "B2_KEY" in str(caught.value)


def test_a_spec_is_frozen_and_its_env_cannot_be_changed_behind_its_back():
    env = {"A": "1"}
    made = spec(env=env)
    env["A"] = "2"
    assert made.env["A"] == "1"
    with pytest.raises(TypeError):
        made.env["A"] = "3"  # type: ignore[index]
