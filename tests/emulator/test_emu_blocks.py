"""Block storage: create rules, attach/detach rules, locks, reboots, auto-detach on delete."""

from __future__ import annotations

import pytest

from .emuclient import A100_40, refusal


@pytest.mark.parametrize(("body", "text"), [
    ({"size_gb": 9}, "Invalid size_gb: high_perf block storage must be between 10 and 10000 GB."),
    ({"size_gb": 10001},
     "Invalid size_gb: high_perf block storage must be between 10 and 10000 GB."),
    ({"size_gb": 39, "block_type": "storage_opt"},
     "Invalid size_gb: storage_opt block storage must be between 40 and 40000 GB."),
    ({"block_type": "ssd"}, "Invalid block_type: must be high_perf or storage_opt."),
    ({"region": "ord"}, "Block storage type high_perf is not available in the selected region."),
    ({"region": "nrt", "block_type": "storage_opt"},
     "Block storage type storage_opt is not available in the selected region."),
    ({"region": "xyz"}, "Invalid region chosen."),
    ({"size_gb": None}, "Missing required field: size_gb."),
    ({"size_gb": "50"}, "Invalid size_gb."),
])
def test_create_refusals(emu, api, body, text):
    full = {k: v for k, v in {"region": "sea", "size_gb": 50, **body}.items() if v is not None}
    assert refusal(api.post("/blocks", full)) == (400, text)
    assert emu.state.list_blocks() == []


def test_block_shape_and_pending_to_active(slow_api, clock):
    block = slow_api.create_block(size_gb=40000, block_type="storage_opt", region="ewr")
    assert block["status"] == "pending" and block["attached_to_instance"] == ""
    assert block["mount_id"].startswith("ewr-") and len(block["mount_id"]) == 16
    assert isinstance(block["cost"], int) and block["block_type"] == "storage_opt"
    clock.advance(1.0)
    assert slow_api.get(f"/blocks/{block['id']}").json()["block"]["status"] == "active"


def test_attach_detach_and_their_refusals(emu, api):
    inst, block = api.create_instance(), api.create_block()
    attach = f"/blocks/{block['id']}/attach"
    assert refusal(api.post(attach, {})) == (400, "Missing required field: instance_id.")
    assert refusal(api.post(attach, {"instance_id": "nope"})) == (404, "Instance not found.")
    assert api.post(attach, {"instance_id": inst["id"], "live": True}).status_code == 204
    got = api.get(f"/blocks/{block['id']}").json()["block"]
    assert got["attached_to_instance"] == inst["id"]
    assert refusal(api.post(attach, {"instance_id": inst["id"], "live": True})) \
        == (400, "Block storage is already attached.")
    assert refusal(api.delete(f"/blocks/{block['id']}")) \
        == (400, "Block storage is attached to an instance. Detach it first.")
    detach = f"/blocks/{block['id']}/detach"
    assert api.post(detach, {"live": True}).status_code == 204
    assert refusal(api.post(detach, {"live": True})) == (
        400, "Block storage volume is not currently attached to a server")
    assert api.delete(f"/blocks/{block['id']}").status_code == 204
    assert refusal(api.get(f"/blocks/{block['id']}")) == (404, "Block storage not found.")


def test_attach_across_regions_is_refused(emu, api):
    emu.set_stock("ewr", [A100_40])
    inst = api.create_instance(region="ewr")
    block = api.create_block(region="sea")
    assert refusal(api.post(f"/blocks/{block['id']}/attach", {"instance_id": inst["id"]})) \
        == (400, "Block storage volume and instance must be in the same region.")


def test_a_busy_instance_is_locked_until_the_clock_moves(slow_emu, slow_api, clock):
    inst, block = slow_api.create_instance(), slow_api.create_block()
    attach = f"/blocks/{block['id']}/attach"
    body = {"instance_id": inst["id"], "live": True}
    assert refusal(slow_api.post(attach, body)) == (400, "Server is currently locked")
    clock.advance(2.0)  # active but still installingbooting
    assert refusal(slow_api.post(attach, body)) == (400, "Server is currently locked")
    clock.advance(1.0)
    slow_emu.state.lock_instance(inst["id"], seconds=5.0)
    assert refusal(slow_api.post(attach, body)) == (400, "Server is currently locked")
    clock.advance(5.0)
    assert slow_api.post(attach, body).status_code == 204
    after = slow_api.get(f"/instances/{inst['id']}").json()["instance"]
    assert after["server_status"] == "locked"  # the short window after an attach
    clock.advance(1.0)
    assert slow_api.get(f"/instances/{inst['id']}").json()["instance"]["server_status"] == "ok"


def test_attach_without_live_reboots_the_instance(emu, api):
    inst, block = api.create_instance(), api.create_block()
    api.post(f"/blocks/{block['id']}/attach", {"instance_id": inst["id"]})
    assert emu.state.get_instance(inst["id"]).reboots == 1
    assert "rebooted" in emu.events[-1].note
    api.post(f"/blocks/{block['id']}/detach", {"live": True})
    assert emu.state.get_instance(inst["id"]).reboots == 1
    assert emu.events[-1].note is None


def test_deleting_an_instance_detaches_its_blocks(emu, api):
    inst = api.create_instance()
    blocks = [api.create_block(label=f"b{i}") for i in range(2)]
    for block in blocks:
        api.post(f"/blocks/{block['id']}/attach", {"instance_id": inst["id"], "live": True})
    assert api.delete(f"/instances/{inst['id']}").status_code == 204
    listed = api.get("/blocks").json()["blocks"]
    assert [b["attached_to_instance"] for b in listed] == ["", ""]
    assert all(api.delete(f"/blocks/{b['id']}").status_code == 204 for b in blocks)


def test_patch_relabels_and_grows(api):
    block = api.create_block()
    path = f"/blocks/{block['id']}"
    assert api.call("PATCH", path, json={"label": "new", "size_gb": 60}).status_code == 204
    got = api.get(path).json()["block"]
    assert (got["label"], got["size_gb"]) == ("new", 60)
    assert refusal(api.call("PATCH", path, json={"size_gb": 20})) \
        == (400, "Invalid size_gb: block storage can only grow.")
