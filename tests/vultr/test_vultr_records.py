"""Records: unknown fields ignored, missing optional ones tolerated, plans classified."""

from __future__ import annotations

import dataclasses

import pytest

from launcher.vultr import (
    Account,
    Availability,
    Block,
    Instance,
    MetalPlan,
    Plan,
    Region,
    Snapshot,
    SshKey,
    User,
)
from launcher.vultr.records import card_model

ALL = [Plan, MetalPlan, Region, Instance, Block, Snapshot, SshKey, Account, User]


@pytest.mark.parametrize("cls", ALL)
def test_unknown_keys_are_ignored_and_missing_ones_tolerated(cls):
    record = cls.from_api({"brand_new_field": {"x": 1}, "id": "abc"})
    assert dataclasses.is_dataclass(record)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.id = "other"  # type: ignore[misc]
    for f in dataclasses.fields(record):
        assert not isinstance(getattr(record, f.name), list), f"{f.name} must be a tuple"


def test_plan_from_api():
    plan = Plan.from_api(
        {
            "id": "vcg-a100-3c-30g-20vram",
            "type": "vcg",
            "vcpu_count": 3,
            "ram": 30720,
            "disk": 700,
            "bandwidth": 4096,
            "monthly_cost": 432.5,
            "gpu_vram_gb": 20,
            "gpu_type": "NVIDIA_A100",
            "locations": ["ewr", "sjc"],
            "disk_count": 1,
        }
    )
    assert plan.locations == ("ewr", "sjc") and plan.monthly_cost == 432.5
    assert plan.hourly_cost is None  # absent, not invented
    assert plan.gpu_vram_gb == 20
    assert Plan.from_api({"hourly_cost": "0.5", "ram": "oops"}).hourly_cost == 0.5
    assert Plan.from_api({"ram": "oops", "vcpu_count": True}).ram == 0


@pytest.mark.parametrize(
    ("fields", "is_gpu", "whole_node"),
    [
        ({"type": "vcg", "gpu_type": "NVIDIA_A100", "gpu_vram_gb": 40}, True, False),
        ({"type": "vcg", "gpu_type": "NVIDIA_H100", "gpu_vram_gb": 640}, True, False),
        ({"type": "vcg", "gpu_type": "NVIDIA_X9000", "gpu_vram_gb": 99}, True, False),
        ({"type": "vcg", "gpu_type": "NVIDIA_A100"}, True, False),
        ({"type": "vcg"}, True, False),
        ({"type": "vdm", "gpu_type": "NVIDIA_H100", "gpu_vram_gb": 640}, True, True),
        # "vdm" is Vultr's dedicated GPU type (sc-crawler): a GPU plan even without fields,
        # listed so that `offers --all` shows it (as an unknown model) instead of hiding it.
        ({"type": "vdm"}, True, True),
        ({"type": "vhf"}, False, False),
    ],
)
def test_plan_classification(fields, is_gpu, whole_node):
    # Whether a plan is a vGPU slice is launcher.providers.vultr_offers.derive_gpus's rule alone.
    plan = Plan.from_api({"id": "p", **fields})
    assert (plan.is_gpu, plan.is_whole_node) == (is_gpu, whole_node)


@pytest.mark.parametrize(
    ("gpu_type", "model"),
    [
        ("NVIDIA_A100", "A100"),
        ("nvidia a40", "A40"),
        ("NVIDIA-L40S-PCIe", "L40S"),
        ("NVIDIA_GH200", "GH200"),
        ("Radeon", None),
        (None, None),
        ("", None),
    ],
)
def test_card_model(gpu_type, model):
    assert card_model(gpu_type) == model


def test_metal_plan_uses_its_own_fields():
    plan = MetalPlan.from_api(
        {
            "id": "vbm-8c",
            "cpu_count": 8,
            "cpu_model": "EPYC",
            "disk": "2x 1.9TB",
            "disk_count": 2,
            "locations": ["ewr"],
            "gpu_type": "NVIDIA_H100",
            "gpu_vram_gb": 640,
        }
    )
    assert plan.disk == "2x 1.9TB" and plan.cpu_model == "EPYC" and plan.is_gpu
    assert not MetalPlan.from_api({"id": "vbm"}).is_gpu


def test_region_nvme_support():
    assert Region.from_api(
        {"id": "ewr", "options": ["block_storage_high_perf"]}
    ).supports_nvme_block
    assert not Region.from_api({"id": "x", "options": None}).supports_nvme_block


def test_availability():
    avail = Availability.from_api("ewr", {"available_plans": ["a", "b"], "extra": 1})
    assert avail.available_plans == ("a", "b") and avail.region == "ewr"


def test_instance_readiness_and_no_password():
    data = {
        "id": "i",
        "status": "active",
        "power_status": "running",
        "server_status": "ok",
        "tags": ["a"],
        "os_id": 2284,
        "default_password": "hunter2",
    }
    inst = Instance.from_api(data)
    assert inst.is_ready and inst.tags == ("a",) and inst.os_id == 2284
    assert "hunter2" not in repr(inst)
    locked = Instance.from_api({**data, "server_status": "locked"})
    assert not locked.is_ready and "server_status=locked" in locked.state


def test_block_attached_to():
    assert Block.from_api({"attached_to_instance": ""}).attached_to is None
    assert Block.from_api({"attached_to_instance": None}).attached_to is None
    assert Block.from_api({"attached_to_instance": "i-1"}).attached_to == "i-1"
    blk = Block.from_api({"size_gb": 50, "cost": 5, "mount_id": "ewr-1", "block_type": "high_perf"})
    assert (blk.size_gb, blk.cost, blk.mount_id) == (50, 5.0, "ewr-1")
    assert blk.state == "status= attached_to=-"


def test_snapshot_account_user():
    snap = Snapshot.from_api({"id": "s", "size": 42949672960, "os_id": 215, "app_id": 0})
    assert snap.size == 42949672960 and snap.state == "status="
    acc = Account.from_api({"balance": -100.55, "pending_charges": 60.25, "acls": ["billing"]})
    assert acc.balance == -100.55 and acc.acls == ("billing",)
    wrapped = User.from_api({"user": {"id": "u", "api_enabled": True, "acls": ["provisioning"]}})
    assert wrapped.id == "u" and wrapped.api_enabled and wrapped.acls == ("provisioning",)
    assert User.from_api({"id": "u", "api_enabled": "yes"}).api_enabled is False


def test_every_record_reads_an_empty_dict_and_a_foreign_one():
    """Each field's annotation has a reader, and no record needs any particular key."""
    import inspect

    from launcher.vultr import records
    from launcher.vultr._coerce import ApiRecord

    classes = [c for _, c in inspect.getmembers(records, inspect.isclass)
               if issubclass(c, ApiRecord) and c is not ApiRecord]
    assert len(classes) >= 9
    for cls in classes:
        assert cls.from_api({}) == cls.from_api({"unknown": {"nested": [1]}})
