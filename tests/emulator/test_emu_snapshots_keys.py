"""Snapshots and SSH keys."""

from __future__ import annotations

from .emuclient import SNAPSHOT_ID, refusal


def test_the_baked_snapshot_is_there_and_complete(api):
    listed = api.get("/snapshots").json()["snapshots"]
    assert [s["id"] for s in listed] == [SNAPSHOT_ID]
    assert listed[0]["description"] == "launcher-gpu-ubuntu2204-550-12.4-20261101"
    assert listed[0]["status"] == "complete" and isinstance(listed[0]["size"], int)


def test_snapshot_lifecycle_and_exact_description_filter(slow_api, clock):
    inst = slow_api.create_instance()
    response = slow_api.post("/snapshots", {"instance_id": inst["id"], "description": "mine"})
    assert response.status_code == 201
    snap = response.json()["snapshot"]
    assert snap["status"] == "pending" and snap["size"] > 0
    clock.advance(3.0)
    assert slow_api.get(f"/snapshots/{snap['id']}").json()["snapshot"]["status"] == "complete"
    found = slow_api.get("/snapshots", description="mine").json()["snapshots"]
    assert [s["id"] for s in found] == [snap["id"]]
    assert slow_api.get("/snapshots", description="min").json()["snapshots"] == []
    assert slow_api.delete(f"/snapshots/{snap['id']}").status_code == 204
    assert refusal(slow_api.get(f"/snapshots/{snap['id']}")) == (404, "Snapshot not found.")


def test_snapshot_refusals(api):
    assert refusal(api.post("/snapshots", {})) == (400, "Missing required field: instance_id.")
    assert refusal(api.post("/snapshots", {"instance_id": "nope"})) \
        == (404, "Instance not found.")


def test_ssh_keys(api):
    seeded = api.get("/ssh-keys").json()["ssh_keys"]
    assert len(seeded) == 2
    response = api.post("/ssh-keys", {"name": "k", "ssh_key": "ssh-ed25519 AAAA k@h"})
    assert response.status_code == 201
    key = response.json()["ssh_key"]
    assert api.get(f"/ssh-keys/{key['id']}").json()["ssh_key"] == key
    assert refusal(api.post("/ssh-keys", {"name": "k"})) \
        == (400, "Missing required field: ssh_key.")
    assert api.delete(f"/ssh-keys/{key['id']}").status_code == 204
    assert refusal(api.get(f"/ssh-keys/{key['id']}")) == (404, "SSH key not found.")
    inst = api.create_instance(sshkey_id=[seeded[0]["id"]])
    assert inst["id"]
