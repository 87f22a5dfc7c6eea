"""Instances: create refusals, lazy state transitions, user data, filters, delete."""

from __future__ import annotations

import base64

import pytest

from .emuclient import A100_40, SNAPSHOT_ID, refusal

GOOD = {"region": "sea", "plan": A100_40, "os_id": 1743}


@pytest.mark.parametrize(("changes", "text"), [
    ({"region": None}, "Missing required field: region."),
    ({"plan": None}, "Missing required field: plan."),
    ({"plan": "vcg-nope"}, "Invalid plan chosen."),
    ({"plan": "vbm-8c-132gb"}, "Invalid plan chosen."),
    ({"region": "xyz"}, "Invalid region chosen."),
    ({"region": "sjc"}, "Plan is not available in the selected region."),
    ({"os_id": None}, "One of os_id, snapshot_id, image_id, app_id or iso_id is required."),
    ({"snapshot_id": SNAPSHOT_ID},
     "Only one of os_id, snapshot_id, image_id, app_id or iso_id may be given."),
    ({"os_id": None, "snapshot_id": "nope"}, "Invalid snapshot."),
    ({"os_id": 99999}, "Invalid OS."),
    ({"os_id": 164}, "Invalid OS."),
    ({"os_id": None, "app_id": 5}, "Invalid application."),
    ({"os_id": None, "iso_id": "x"}, "Invalid ISO."),
    ({"os_id": "1743"}, "Invalid os_id."),
    ({"tags": "a"}, "Invalid tags."),
    ({"user_data": "not base64!"}, "Invalid user_data: must be base64 encoded."),
    ({"sshkey_id": ["nope"]}, "Invalid SSH key."),
])
def test_create_refusals(emu, api, changes, text):
    body = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    assert refusal(api.post("/instances", body)) == (400, text)
    assert emu.state.list_instances(None, None, None) == []


def test_malformed_json_is_a_400(api):
    response = api.call("POST", "/instances", data=b"{not json",
                        headers={"Content-Type": "application/json"})
    assert refusal(response) == (400, "Invalid JSON body.")
    assert refusal(api.call("POST", "/instances", data=b"[1]")) == (400, "Invalid JSON body.")


def test_states_move_only_with_the_clock(slow_emu, slow_api, clock):
    created = slow_api.create_instance()
    assert (created["status"], created["power_status"], created["server_status"]) \
        == ("pending", "stopped", "none")
    assert created["main_ip"] == "0.0.0.0" and created["default_password"]

    def read() -> dict:
        return slow_api.get(f"/instances/{created['id']}").json()["instance"]

    clock.advance(1.0)
    now = read()
    assert (now["status"], now["power_status"], now["server_status"]) \
        == ("active", "running", "installingbooting")
    assert now["main_ip"].startswith("192.0.2.")
    clock.advance(2.0)
    assert read()["server_status"] == "ok"
    slow_emu.state.lock_instance(created["id"])
    assert read()["server_status"] == "locked"
    clock.advance(600.0)
    assert read()["default_password"] == ""


def test_instance_fields_reflect_the_request(api):
    user_data = base64.b64encode(b"#cloud-config\n").decode()
    inst = api.create_instance(label="train-7", hostname="train-7", tags=["a", "b"],
                               tag="legacy", user_data=user_data, enable_ipv6=True)
    assert (inst["label"], inst["hostname"], inst["plan"], inst["region"]) \
        == ("train-7", "train-7", A100_40, "sea")
    assert inst["tags"] == ["a", "b", "legacy"] and inst["tag"] == "a"
    assert (inst["os_id"], inst["os"], inst["snapshot_id"]) == (164, "Snapshot", SNAPSHOT_ID)
    assert inst["features"] == ["ipv6"] and isinstance(inst["ram"], int)
    assert inst["date_created"].endswith("+00:00")
    body = api.get(f"/instances/{inst['id']}/user-data").json()
    assert body == {"user_data": {"data": user_data}}


def test_list_filters_by_label_tag_and_region(emu, api):
    emu.set_stock("ewr", [A100_40])
    first = api.create_instance(label="a", tags=["run:1"])
    second = api.create_instance(label="b", tags=["run:2"], region="ewr")

    def ids(**params) -> list[str]:
        return [i["id"] for i in api.get("/instances", **params).json()["instances"]]

    assert ids() == [first["id"], second["id"]]
    assert ids(label="a") == [first["id"]]
    assert ids(tag="run:2") == [second["id"]]
    assert ids(region="ewr") == [second["id"]]
    assert ids(label="zzz") == []


def test_delete_then_get_is_404(api):
    inst = api.create_instance()
    assert api.delete(f"/instances/{inst['id']}").status_code == 204
    assert refusal(api.get(f"/instances/{inst['id']}")) == (404, "Instance not found.")
    assert refusal(api.delete(f"/instances/{inst['id']}")) == (404, "Instance not found.")
    assert refusal(api.get(f"/instances/{inst['id']}/user-data"))[0] == 404


def test_seeded_ids_are_reproducible():
    from launcher.emulator import Emulator, RateLimit, Timing
    from launcher.emulator.state import InstanceSpec

    ids = []
    for _ in range(2):
        emulator = Emulator(timing=Timing.instant(), rate_limit=RateLimit(None), seed=42)
        spec = InstanceSpec(region="sea", plan=A100_40, os_id=1743)
        ids.append(emulator.state.create_instance(spec).id)
    assert ids[0] == ids[1]


def test_unknown_route_and_wrong_method(api):
    assert refusal(api.get("/nope")) == (404, "Invalid route.")
    assert refusal(api.call("GET", "/../instances"))[0] == 404
    response = api.call("PUT", "/instances")
    assert refusal(response) == (405, "Method not allowed.")
    assert response.headers["Allow"] == "GET, POST"
