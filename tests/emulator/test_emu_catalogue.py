"""The catalogue: plans, metal plans, regions, availability, OS, account and users."""

from __future__ import annotations

import pytest

from .emuclient import A100_40, refusal


def test_gpu_plans_carry_gpu_fields_and_include_the_whole_node(api):
    plans = api.get("/plans", type="vcg").json()["plans"]
    assert {p["type"] for p in plans} == {"vcg", "vdm"}
    # A dedicated node may carry no GPU fields at all (sc-crawler's reading of Vultr).
    bare = [p["id"] for p in plans if "gpu_type" not in p]
    assert bare == ["vcg-b200-248c-2826g-1536vram"]
    plans = [p for p in plans if p["id"] not in bare]
    assert all(isinstance(p["gpu_vram_gb"], int) and isinstance(p["gpu_type"], str)
               for p in plans)
    assert all(p["deploy_ondemand"] is True and p["location_cost"] == {} for p in plans)
    assert all(isinstance(p["monthly_cost"], int) for p in plans)
    by_gpu: dict[str, set[int]] = {}
    for plan in plans:
        by_gpu.setdefault(plan["gpu_type"], set()).add(plan["gpu_vram_gb"])
    assert by_gpu["NVIDIA_A16"] == {2, 4, 8, 16}
    assert {2, 48} <= by_gpu["NVIDIA_A40"]
    assert by_gpu["NVIDIA_A100"] == {4, 8, 10, 20, 40, 80}
    assert by_gpu["NVIDIA_L40S"] == {48}
    whole = [p for p in plans if p["type"] == "vdm"]
    assert [p["gpu_vram_gb"] for p in whole] == [640]


@pytest.mark.parametrize(("wanted", "types"), [
    (None, {"vc2", "vhf", "vcg", "vdm"}), ("all", {"vc2", "vhf", "vcg", "vdm"}),
    ("vc2", {"vc2"}), ("vhf", {"vhf"}), ("vbm", set()), ("gpu", set()),
])
def test_plans_filter_by_type(api, wanted, types):
    params = {} if wanted is None else {"type": wanted}
    assert {p["type"] for p in api.get("/plans", **params).json()["plans"]} == types


def test_metal_plans_use_vultrs_list_key(api):
    body = api.get("/plans-metal").json()
    assert set(body) == {"plans_metal", "meta"}
    gpus = [p for p in body["plans_metal"] if "gpu_type" in p]
    assert len(gpus) == 2 and len(body["plans_metal"]) == 3
    assert all(isinstance(p["disk"], str) for p in body["plans_metal"])


def test_regions_and_block_storage_options(api):
    regions = {r["id"]: r for r in api.get("/regions").json()["regions"]}
    assert {"sjc", "sea", "lax", "ewr"} <= set(regions)
    assert regions["sjc"]["city"] == "Silicon Valley"
    for rid in ("sjc", "sea", "lax", "ewr"):
        assert "block_storage_high_perf" in regions[rid]["options"]
    assert any("block_storage_high_perf" not in r["options"] for r in regions.values())


def test_availability_filters_by_type_and_differs_by_region(api):
    sjc = api.get("/regions/sjc/availability", type="vcg").json()["available_plans"]
    sea = api.get("/regions/sea/availability", type="vcg").json()["available_plans"]
    assert A100_40 in sea and A100_40 not in sjc
    assert all(p.startswith("vcg") for p in sjc)
    everything = api.get("/regions/ewr/availability").json()["available_plans"]
    metal = api.get("/regions/ewr/availability", type="vbm").json()["available_plans"]
    assert metal and set(metal) < set(everything)
    assert all(p.startswith("vbm") for p in metal)
    assert api.get("/regions/ewr/availability", type="nope").json() == {"available_plans": []}
    assert refusal(api.get("/regions/xyz/availability")) == (400, "Invalid region chosen.")


def test_set_stock_drives_availability_and_create(emu, api):
    emu.set_stock("sjc", [A100_40])
    assert emu.stock("sjc") == [A100_40]
    assert api.get("/regions/sjc/availability").json()["available_plans"] == [A100_40]
    assert api.create_instance(region="sjc")["region"] == "sjc"
    emu.set_stock("sea", [])
    assert refusal(api.post("/instances", {"region": "sea", "plan": A100_40, "os_id": 1743})) \
        == (400, "Plan is not available in the selected region.")
    with pytest.raises(ValueError):
        emu.set_stock("sjc", ["no-such-plan"])
    with pytest.raises(ValueError):
        emu.set_stock("xyz", [])


def test_os_account_and_users(api):
    os_ids = {o["id"]: o["name"] for o in api.get("/os").json()["os"]}
    assert os_ids[164] == "Snapshot" and "Ubuntu 22.04 LTS x64" in os_ids.values()
    account = api.get("/account").json()["account"]
    assert isinstance(account["balance"], float) and "acls" in account
    users = api.get("/users").json()["users"]
    service = [u for u in users if u["acls"] == ["provisioning", "subscriptions_view"]]
    assert len(service) == 1 and service[0]["api_enabled"] is True
    one = api.get(f"/users/{service[0]['id']}").json()["user"]
    assert one == service[0]
    assert refusal(api.get("/users/nope")) == (404, "User not found.")
    assert "manage_users" in users[0]["acls"]
