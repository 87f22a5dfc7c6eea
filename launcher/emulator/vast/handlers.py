"""One function per Vast endpoint: ``(store, request, ids) -> Response``."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable

from launcher.emulator.vast import offers as cat
from launcher.emulator.vast.errors import VastRefusal
from launcher.emulator.vast.listing import list_v1
from launcher.emulator.vast.records import HOURS_PER_MONTH, Instance, published_ports
from launcher.emulator.vast.state import CreateSpec, VastStore
from launcher.emulator.wire import Request, Response

Handler = Callable[[VastStore, Request, list[str]], Response]
MAX_IMAGE, MAX_LAUNCH, MAX_LABEL, MAX_ENV_VALUE, MAX_ENV_TOTAL = 1024, 4096, 256, 256, 32768
MIN_DISK_GB = 8.0
MAX_MANAGED_LABEL = 1024
RUNTYPES = {"ssh", "jupyter", "args", "ssh_proxy", "ssh_direct", "jupyter_proxy",
            "jupyter_direct"}
_DOCKER_FLAGS = ("-p ", "-v ", "-n ", "-h")


def body_of(req: Request) -> dict:
    """The JSON object body (empty body: ``{}``); anything else is Vast's 400."""
    if req.body_error:
        raise VastRefusal(400, "bad_json")
    try:
        value = json.loads(req.body) if req.body.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise VastRefusal(400, "bad_json") from exc
    if not isinstance(value, dict):
        raise VastRefusal(400, "bad_json")
    return value


def number_id(raw: str, error: str, status: int = 400) -> int:
    if not raw.isdigit():
        raise VastRefusal(status, error)
    return int(raw)


def instance_view(store: VastStore, inst: Instance) -> dict:
    """An instance as show/list answer it (fields of show_instance.yaml; ``ports`` as
    show_instances.yaml has them, only while it runs)."""
    status = store.status(inst)
    row = store.offers.get(inst.offer_id, {})
    disk_hour = inst.storage_cost * inst.disk_gb / HOURS_PER_MONTH
    gpu_hour = 0.0 if inst.stopped else inst.dph_base
    ports = {"ports": published_ports(inst)} if status.actual_status == "running" else {}
    return {
        **ports,
        "id": inst.id, "machine_id": inst.machine_id, "label": inst.label or None,
        "actual_status": status.actual_status, "intended_status": status.intended_status,
        "cur_state": status.cur_state, "next_state": status.next_state,
        "image_uuid": inst.image, "image_runtype": inst.runtype, "image_args": list(inst.args),
        "onstart": inst.onstart, "extra_env": [list(kv) for kv in inst.env],
        "disk_space": inst.disk_gb, "start_date": inst.start_date,
        "gpu_name": row.get("gpu_name"), "num_gpus": row.get("num_gpus"),
        "gpu_ram": row.get("gpu_ram"), "geolocation": row.get("geolocation"),
        "public_ipaddr": row.get("public_ipaddr"), "ssh_host": row.get("public_ipaddr"),
        "ssh_port": 22, "status_msg": None, "template_id": None,
        "dph_base": inst.dph_base, "dph_total": inst.dph_base + disk_hour,
        "storage_cost": inst.storage_cost, "storage_total_cost": disk_hour,
        "instance": {"gpuCostPerHour": gpu_hour, "diskHour": disk_hour,
                     "totalHour": gpu_hour + disk_hour, "discountTotalHour": 0,
                     "discountedTotalPerHour": gpu_hour + disk_hour},
    }


def search_offers(store: VastStore, req: Request, ids: list[str]) -> Response:
    query = body_of(req)
    order = query.pop("order", [["score", "desc"]])
    offer_type = cat.OFFER_TYPES.get(str(query.pop("type", "on-demand")))
    limit, allocated = query.pop("limit", None), query.pop("allocated_storage", None)
    if offer_type is None:
        raise VastRefusal(400, "bad_query", detail="type must be on-demand, bid or reserved")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        raise VastRefusal(400, "bad_query", detail="limit must be an integer")
    if allocated is None:
        allocated = cat.DEFAULT_ALLOCATED_GB
    if isinstance(allocated, bool) or not isinstance(allocated, (int, float)) or allocated < 0:
        raise VastRefusal(400, "bad_query", detail="allocated_storage must be a number")
    found = store.search(query, order, limit, float(allocated), offer_type)
    return Response(200, {"offers": found})


def _env(raw: object) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """``env`` as vast-cli sends it (an object; ``"-p 8000:8000": "1"`` keys are ports) or
    as the OpenAPI documents it (a ``"-e K=V -p 8000:8000"`` string)."""
    if raw is None:
        return (), ()
    if isinstance(raw, str):
        words, pairs = shlex.split(raw), {}
        for flag, value in zip(words, words[1:], strict=False):
            if flag == "-e" and "=" in value:
                name, _, val = value.partition("=")
                pairs[name] = val
            elif flag in ("-p", "-v", "-n", "-h"):
                pairs[f"{flag} {value}"] = "1"
        raw = pairs
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise VastRefusal(400, "bad_args", detail="env must be an object of strings")
    env = tuple((k, v) for k, v in raw.items() if not k.startswith(_DOCKER_FLAGS))
    ports = tuple(k[3:] for k in raw if k.startswith("-p "))
    if any(len(v) > MAX_ENV_VALUE for _, v in env) or \
            sum(len(k) + len(v) for k, v in env) > MAX_ENV_TOTAL:
        raise VastRefusal(400, "bad_args", detail="env is too long")
    return env, ports


def _text(body: dict, name: str, limit: int, default: str = "") -> str:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise VastRefusal(400, "bad_args", detail=f"{name} must be a string")
    if len(value) > limit:
        raise VastRefusal(400, "bad_args", detail=f"{name} is longer than {limit}")
    return value


def _create_spec(body: dict) -> CreateSpec:
    image = _text(body, "image", MAX_IMAGE)
    if not image:
        raise VastRefusal(400, "bad_args", detail="image is required")
    disk = body.get("disk", MIN_DISK_GB)
    if isinstance(disk, bool) or not isinstance(disk, (int, float)) or disk < MIN_DISK_GB:
        raise VastRefusal(400, "bad_args", detail=f"disk must be at least {MIN_DISK_GB:g} GB")
    args = body.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise VastRefusal(400, "bad_args", detail="args must be a list of strings")
    onstart = _text(body, "onstart", MAX_LAUNCH)
    args_str = _text(body, "args_str", MAX_LAUNCH)
    if len(onstart) + len(args_str) + sum(len(a) for a in args) > MAX_LAUNCH:
        raise VastRefusal(400, "bad_args", detail=f"args and onstart exceed {MAX_LAUNCH}")
    runtype = _text(body, "runtype", 64, "args" if args or args_str else "ssh")
    if runtype not in RUNTYPES:
        raise VastRefusal(400, "bad_args", detail=f"runtype {runtype} is not known")
    env, ports = _env(body.get("env"))
    return CreateSpec(image=image, disk_gb=float(disk), label=_text(body, "label", MAX_LABEL),
                      env=env, ports=ports, onstart=onstart,
                      args=tuple(args) or tuple(shlex.split(args_str)), runtype=runtype)


def create_instance(store: VastStore, req: Request, ids: list[str]) -> Response:
    offer_id = number_id(ids[0], "bad_offer_id")
    inst = store.create(offer_id, _create_spec(body_of(req)))
    return Response(200, {"success": True, "new_contract": inst.id,
                          "instance_api_key": inst.api_key})


def show_instance(store: VastStore, req: Request, ids: list[str]) -> Response:
    inst = store.get(number_id(ids[0], "bad_instance_id"))
    return Response(200, {"instances": None if inst is None else instance_view(store, inst)})


def list_v0(store: VastStore, req: Request, ids: list[str]) -> Response:
    found = [instance_view(store, i) for i in store.listed()]
    return Response(200, {"instances_found": len(found), "instances": found})


def list_instances(store: VastStore, req: Request, ids: list[str]) -> Response:
    views = [instance_view(store, i) for i in store.listed()]
    return Response(200, list_v1(views, req))


def manage_instance(store: VastStore, req: Request, ids: list[str]) -> Response:
    instance_id = number_id(ids[0], "bad_instance_id")
    body = body_of(req)
    if "state" not in body and "label" not in body:
        raise VastRefusal(400, "bad_args", detail="give state or label")
    if "label" in body:
        label = body["label"]
        if not isinstance(label, str):
            raise VastRefusal(400, "bad_args", detail="label must be a string")
        if len(label) > MAX_MANAGED_LABEL:
            raise VastRefusal(400, "label_too_long")
        store.relabel(instance_id, label)
    if "state" in body:
        if body["state"] not in ("running", "stopped"):
            raise VastRefusal(400, "bad_state")
        store.set_state(instance_id, body["state"])
    return Response(200, {"success": True})


def destroy_instance(store: VastStore, req: Request, ids: list[str]) -> Response:
    store.destroy(number_id(ids[0], "bad_instance_id"))
    return Response(200, {"success": True})


def request_logs(store: VastStore, req: Request, ids: list[str]) -> Response:
    instance_id = number_id(ids[0], "logs_bad_id", 404)
    body = body_of(req)
    tail = str(body.get("tail", "")).strip()
    grep = body.get("filter")
    token = store.request_logs(instance_id, int(tail) if tail.isdigit() else None,
                               grep if isinstance(grep, str) else None)
    base = store.api_url().rsplit("/api/", 1)[0]
    return Response(200, {"success": True, "result_url": f"{base}/instance_logs/{token}.log",
                          "msg": "logs requested"})


class TextResponse(Response):
    """A plain-text answer (a log file, as S3 would serve it)."""

    def encode(self) -> tuple[dict[str, str], bytes]:
        data = (self.note or "").encode() if self.status == 200 else b""
        return {"Content-Type": "text/plain", "Content-Length": str(len(data))}, data


def fetch_logs(store: VastStore, req: Request, ids: list[str]) -> Response:
    """``result_url``: 404 until the logs are ready, then the text (no key needed)."""
    text = store.log_text(ids[0].removesuffix(".log"))
    return TextResponse(404) if text is None else TextResponse(200, note=text)


def current_user(store: VastStore, req: Request, ids: list[str]) -> Response:
    return Response(200, dict(store.user))


def list_ssh_keys(store: VastStore, req: Request, ids: list[str]) -> Response:
    keys = [{"id": k.id, "user_id": store.user["id"], "key": k.key,
             "created_at": k.created_at, "deleted_at": None} for k in store.ssh_keys.values()]
    return Response(200, keys)  # type: ignore[arg-type] - Vast answers a bare array


def create_ssh_key(store: VastStore, req: Request, ids: list[str]) -> Response:
    key = body_of(req).get("ssh_key")
    if not isinstance(key, str) or not key.strip():
        raise VastRefusal(400, "no_ssh_key")
    record = store.add_ssh_key(key.strip())
    return Response(200, {"success": True, "key": {
        "id": record.id, "user_id": store.user["id"], "public_key": record.key,
        "created_at": record.created_at, "deleted_at": None}})


def delete_ssh_key(store: VastStore, req: Request, ids: list[str]) -> Response:
    store.delete_ssh_key(number_id(ids[0], "no_ssh_key"))
    return Response(200, {"success": True})
