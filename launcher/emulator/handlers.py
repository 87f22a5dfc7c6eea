"""One function per endpoint: check the request's shape, call the store, shape the answer.

Every handler takes ``(store, request, ids)`` where ``ids`` are the path's ``{id}`` segments,
and returns a :class:`Response`; refusals are raised as :class:`Refusal`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from launcher.emulator.errors import Refusal
from launcher.emulator.pagination import paginate
from launcher.emulator.records import (
    block_view,
    instance_view,
    instance_vpc_view,
    snapshot_view,
    ssh_key_view,
    vpc_view,
)
from launcher.emulator.state import InstanceSpec, Store
from launcher.emulator.wire import Request, Response, field_value

Handler = Callable[[Store, Request, list[str]], Response]


def _text(body: dict, name: str, *, required: bool = False, default: str = "") -> str:
    value = field_value(body, name, str, required=required, default=default)
    return value if isinstance(value, str) else default


def _int(body: dict, name: str, *, required: bool = False, default: int = 0) -> int:
    value = field_value(body, name, int, required=required, default=default)
    return value if isinstance(value, int) else default


def _flag(body: dict, name: str) -> bool:
    return field_value(body, name, bool, default=False) is True


def _strings(body: dict, name: str) -> list[str]:
    value = field_value(body, name, list, default=[])
    return list(value) if isinstance(value, list) else []


def _listing(key: str, items: list, req: Request) -> Response:
    page, meta = paginate(items, req.arg("per_page"), req.arg("cursor"))
    return Response(200, {key: page, "meta": meta})


# -- catalogue (public) -----------------------------------------------------------------------

def list_regions(store: Store, req: Request, ids: list[str]) -> Response:
    return _listing("regions", list(store.regions.values()), req)


def _types(wanted: str | None) -> set[str] | None:
    """None means every type; "vcg" covers fractional (vcg) and whole-node (vdm) GPU plans."""
    if wanted in (None, "", "all"):
        return None
    return {"vcg", "vdm"} if wanted == "vcg" else {wanted}


def list_plans(store: Store, req: Request, ids: list[str]) -> Response:
    types = _types(req.arg("type"))
    plans = [p for p in store.plans.values() if types is None or p["type"] in types]
    return _listing("plans", plans, req)


def list_metal_plans(store: Store, req: Request, ids: list[str]) -> Response:
    # Vultr's real list key; the OpenAPI document says "plans".
    return _listing("plans_metal", list(store.metal_plans.values()), req)


def list_os(store: Store, req: Request, ids: list[str]) -> Response:
    return _listing("os", list(store.operating_systems.values()), req)


def availability(store: Store, req: Request, ids: list[str]) -> Response:
    if ids[0] not in store.regions:
        raise Refusal(400, "bad_region")
    types = _types(req.arg("type"))

    def plan_type(plan_id: str) -> str:
        return "vbm" if plan_id in store.metal_plans else store.plans[plan_id]["type"]

    plans = [p for p in store.stock(ids[0]) if types is None or plan_type(p) in types]
    return Response(200, {"available_plans": plans})


# -- instances --------------------------------------------------------------------------------

def _instance_spec(body: dict) -> InstanceSpec:
    tags = _strings(body, "tags")
    legacy_tag = _text(body, "tag")
    if legacy_tag and legacy_tag not in tags:
        tags.append(legacy_tag)
    user_data = _text(body, "user_data")
    try:
        base64.b64decode(user_data.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise Refusal(400, "bad_user_data") from exc
    features = [name for name, on in (
        ("auto_backups", _text(body, "backups") == "enabled"),
        ("ipv6", _flag(body, "enable_ipv6")),
        ("ddos_protection", _flag(body, "ddos_protection"))) if on]
    return InstanceSpec(
        region=_text(body, "region", required=True), plan=_text(body, "plan", required=True),
        os_id=_int(body, "os_id"), app_id=_int(body, "app_id"),
        snapshot_id=_text(body, "snapshot_id"), image_id=_text(body, "image_id"),
        iso_id=_text(body, "iso_id"), label=_text(body, "label"),
        hostname=_text(body, "hostname"), tags=tuple(tags), user_data=user_data,
        sshkey_ids=tuple(_strings(body, "sshkey_id")), features=tuple(features),
        attach_vpc=tuple(_strings(body, "attach_vpc")))


def create_instance(store: Store, req: Request, ids: list[str]) -> Response:
    inst = store.create_instance(_instance_spec(req.json()))
    return Response(202, {"instance": instance_view(inst, store.now(), store.timing)})


def list_instances(store: Store, req: Request, ids: list[str]) -> Response:
    found = store.list_instances(req.arg("label"), req.arg("tag"), req.arg("region"))
    now = store.now()
    return _listing("instances", [instance_view(i, now, store.timing) for i in found], req)


def get_instance(store: Store, req: Request, ids: list[str]) -> Response:
    inst = store.get_instance(ids[0])
    return Response(200, {"instance": instance_view(inst, store.now(), store.timing)})


def delete_instance(store: Store, req: Request, ids: list[str]) -> Response:
    store.delete_instance(ids[0])
    return Response(204)


def get_user_data(store: Store, req: Request, ids: list[str]) -> Response:
    return Response(200, {"user_data": {"data": store.get_instance(ids[0]).user_data}})


def list_instance_vpcs(store: Store, req: Request, ids: list[str]) -> Response:
    nics = store.get_instance(ids[0]).private
    return _listing("vpcs", [instance_vpc_view(n) for n in nics], req)


# -- VPCs -------------------------------------------------------------------------------------

def create_vpc(store: Store, req: Request, ids: list[str]) -> Response:
    body = req.json()
    vpc = store.vpcs.create(
        region=_text(body, "region", required=True), description=_text(body, "description"),
        v4_subnet=_text(body, "v4_subnet"), v4_subnet_mask=_int(body, "v4_subnet_mask"))
    return Response(201, {"vpc": vpc_view(vpc)})


def list_vpcs(store: Store, req: Request, ids: list[str]) -> Response:
    return _listing("vpcs", [vpc_view(v) for v in store.vpcs.list()], req)


def get_vpc(store: Store, req: Request, ids: list[str]) -> Response:
    return Response(200, {"vpc": vpc_view(store.vpcs.get(ids[0]))})


def update_vpc(store: Store, req: Request, ids: list[str]) -> Response:
    store.vpcs.update(ids[0], _text(req.json(), "description", required=True))
    return Response(204)


def delete_vpc(store: Store, req: Request, ids: list[str]) -> Response:
    with store.lock:
        store.vpcs.delete(ids[0], store.list_instances(None, None, None))
    return Response(204)


# -- block storage ----------------------------------------------------------------------------

def create_block(store: Store, req: Request, ids: list[str]) -> Response:
    body = req.json()
    block = store.create_block(
        region=_text(body, "region", required=True),
        size_gb=_int(body, "size_gb", required=True),
        label=_text(body, "label"), block_type=_text(body, "block_type", default="high_perf"))
    return Response(202, {"block": block_view(block, store.now(), store.timing)})


def list_blocks(store: Store, req: Request, ids: list[str]) -> Response:
    now = store.now()
    return _listing("blocks", [block_view(b, now, store.timing) for b in store.list_blocks()],
                    req)


def get_block(store: Store, req: Request, ids: list[str]) -> Response:
    return Response(200, {"block": block_view(store.get_block(ids[0]), store.now(),
                                              store.timing)})


def update_block(store: Store, req: Request, ids: list[str]) -> Response:
    body = req.json()
    label = _text(body, "label") if "label" in body else None
    size_gb = _int(body, "size_gb") if body.get("size_gb") is not None else None
    store.update_block(ids[0], label, size_gb)
    return Response(204)


def delete_block(store: Store, req: Request, ids: list[str]) -> Response:
    store.delete_block(ids[0])
    return Response(204)


def _reboot_note(inst_id: str, live: bool) -> str | None:
    return None if live else f"instance {inst_id} rebooted (live=false)"


def attach_block(store: Store, req: Request, ids: list[str]) -> Response:
    body = req.json()
    live = _flag(body, "live")
    inst = store.attach_block(ids[0], _text(body, "instance_id", required=True), live)
    return Response(204, note=_reboot_note(inst.id, live))


def detach_block(store: Store, req: Request, ids: list[str]) -> Response:
    live = _flag(req.json(), "live")
    inst = store.detach_block(ids[0], live)
    return Response(204, note=_reboot_note(inst.id, live))


# -- snapshots, ssh keys, account, users ------------------------------------------------------

def list_snapshots(store: Store, req: Request, ids: list[str]) -> Response:
    now = store.now()
    found = store.list_snapshots(req.arg("description"))
    return _listing("snapshots", [snapshot_view(s, now, store.timing) for s in found], req)


def create_snapshot(store: Store, req: Request, ids: list[str]) -> Response:
    body = req.json()
    snap = store.create_snapshot(_text(body, "instance_id", required=True),
                                 _text(body, "description"))
    return Response(201, {"snapshot": snapshot_view(snap, store.now(), store.timing)})


def get_snapshot(store: Store, req: Request, ids: list[str]) -> Response:
    snap = store.get_snapshot(ids[0])
    return Response(200, {"snapshot": snapshot_view(snap, store.now(), store.timing)})


def delete_snapshot(store: Store, req: Request, ids: list[str]) -> Response:
    store.delete_snapshot(ids[0])
    return Response(204)


def list_ssh_keys(store: Store, req: Request, ids: list[str]) -> Response:
    return _listing("ssh_keys", [ssh_key_view(k) for k in store.list_ssh_keys()], req)


def create_ssh_key(store: Store, req: Request, ids: list[str]) -> Response:
    body = req.json()
    key = store.create_ssh_key(_text(body, "name", required=True),
                               _text(body, "ssh_key", required=True))
    return Response(201, {"ssh_key": ssh_key_view(key)})


def get_ssh_key(store: Store, req: Request, ids: list[str]) -> Response:
    return Response(200, {"ssh_key": ssh_key_view(store.get_ssh_key(ids[0]))})


def delete_ssh_key(store: Store, req: Request, ids: list[str]) -> Response:
    store.delete_ssh_key(ids[0])
    return Response(204)


def get_account(store: Store, req: Request, ids: list[str]) -> Response:
    return Response(200, {"account": dict(store.account)})


def list_users(store: Store, req: Request, ids: list[str]) -> Response:
    return _listing("users", [dict(u) for u in store.users.values()], req)


def get_user(store: Store, req: Request, ids: list[str]) -> Response:
    user = store.users.get(ids[0])
    if user is None:
        raise Refusal(404, "user_not_found")
    return Response(200, {"user": dict(user)})
