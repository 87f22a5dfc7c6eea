"""The emulator's own control endpoint, ``/_emulator/...``: faults and stock from a shell.

:class:`Control` answers the faults endpoint for any emulated provider, plus the
provider's own endpoints handed to it (Vultr's stock: :class:`VultrStock`; Vast's offers live
in ``launcher.emulator.vast``). What follows describes the Vultr emulator's.

NOT part of Vultr's API, and never under ``/v2``: it lets a person rehearse failures with
curl against ``launcher emulator``, doing what tests do from Python with
``Emulator.inject`` / ``set_stock``. Every call needs the emulator's own key (``main``, the
one it serves with; never an added key) and a loopback client; the emulator binds
127.0.0.1 only. Control calls are not API traffic: they skip the rate limit and the latency,
and are neither logged as events nor handed to listeners. Its error texts are the emulator's
own, sent in Vultr's envelope so the same tools read them.

``GET /_emulator/faults``     armed faults, in firing order
``POST /_emulator/faults``    ``{"route": "POST /instances", "kind": "refuse", "count": 2,
                              "error": "out_of_stock"}``: the kind's options sit beside
                              ``route``/``kind``/``count``, as ``Emulator.inject`` takes them
``DELETE /_emulator/faults``  disarm them all
``GET /_emulator/stock``      region → plan ids in stock
``POST /_emulator/stock``     ``{"region": "sea", "plans": [...]}`` (replace the region's stock)
                              or ``{"region": "sea", "plan": "...", "in_stock": false}``
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Mapping

from launcher.emulator.faults import KINDS_TEXT, Fault, FaultPlan, check_kind
from launcher.emulator.keys import MAIN_KEY, Keyring
from launcher.emulator.state import Store
from launcher.emulator.wire import Request, Response, error_response

CONTROL_PREFIX = "/_emulator"
MAX_COUNT = 10_000
_FAULT_METHODS = ("GET", "POST", "DELETE")
_FAULT_FIELDS = ("route", "kind", "count")
VULTR_ROUTE_HINT = ('route: expected "METHOD /path" of a /v2 endpoint, '
                    'e.g. "POST /instances" or "GET /instances/{id}"')
Endpoint = tuple[tuple[str, ...], Callable[[Request], Response]]


class ControlError(Exception):
    """A refused control call: ``status`` and a message naming the field and what it takes."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = dict(headers or {})


def is_control(path: str) -> bool:
    """Whether ``path`` belongs to the control endpoint rather than the API."""
    return path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")


class Control:
    """Answers ``/_emulator/...`` requests: the faults endpoint and ``endpoints`` (name →
    methods and handler, e.g. ``"/stock"``), for the holder of the emulator's main key.
    ``key_env`` and ``route_hint`` word the refusals for the provider emulated."""

    def __init__(self, faults: FaultPlan, keys: Keyring, *, key_env: str = "VULTR_KEY",
                 route_hint: str = VULTR_ROUTE_HINT,
                 endpoints: Mapping[str, Endpoint] | None = None) -> None:
        self.faults = faults
        self.keys = keys
        self.key_env = key_env
        self.route_hint = route_hint
        self.endpoints: dict[str, Endpoint] = {
            "/faults": (_FAULT_METHODS, self._faults), **(endpoints or {})}

    def handle(self, req: Request) -> Response:
        """Answer one control request; every refusal is an error envelope."""
        try:
            self._admit(req)
            return self._dispatch(req)
        except ControlError as exc:
            return error_response(exc.status, str(exc), exc.headers)

    def _admit(self, req: Request) -> None:
        if not _is_loopback(req.client):
            raise ControlError(403, "the emulator's control endpoint answers loopback clients "
                                    "only")
        header = req.header("authorization")
        verdict = self.keys.judge(header, req.client)
        if not (verdict.accepted and verdict.name == MAIN_KEY):
            raise ControlError(401, "the emulator's control endpoint needs the key the emulator "
                                    f"serves with: send 'Authorization: Bearer ${self.key_env}'")

    def _dispatch(self, req: Request) -> Response:
        name = req.path[len(CONTROL_PREFIX):].rstrip("/")
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            known = ", ".join(f"{CONTROL_PREFIX}{n}" for n in self.endpoints)
            raise ControlError(404, f"no control endpoint {req.path!r}: one of {known}")
        methods, handler = endpoint
        if req.method not in methods:
            raise ControlError(405, f"{CONTROL_PREFIX}{name} takes {', '.join(methods)}",
                               {"Allow": ", ".join(methods)})
        return handler(req)

    def _faults(self, req: Request) -> Response:
        if req.method == "DELETE":
            return Response(200, {"cleared": self.faults.clear()})
        if req.method == "POST":
            route, kind, count, opts = _fault_fields(json_body(req), self.route_hint)
            _field_check("route", self.faults.check_route, route)
            _field_check("kind", check_kind, kind)
            try:
                fault = self.faults.inject(route, kind, count, **opts)
            except ValueError as exc:
                raise ControlError(400, f"options of {kind!r}: {exc}") from exc
            return Response(201, {"fault": _fault_json(fault)})
        return Response(200, {"faults": [_fault_json(f) for f in self.faults.pending()]})


class VultrStock:
    """``/_emulator/stock``: what each Vultr region has in stock."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def handle(self, req: Request) -> Response:
        """GET: region → plan ids; POST: replace a region's stock, or flip one plan."""
        if req.method == "GET":
            return Response(200, {"stock": {r: self.store.stock(r) for r in self.store.regions}})
        fields = json_body(req)
        region = fields.get("region")
        if not isinstance(region, str) or region not in self.store.regions:
            regions = ", ".join(sorted(self.store.regions))
            raise ControlError(400, f"region: expected one of {regions}, not {shown(region)}")
        plans = self._new_stock(region, fields)
        self.store.set_stock(region, plans)
        return Response(200, {"region": region, "available_plans": self.store.stock(region)})

    def _new_stock(self, region: str, body: dict) -> list[str]:
        extra = set(body) - {"region", "plans", "plan", "in_stock"}
        if extra:
            raise ControlError(400, f"unknown field(s) {sorted(extra)}: a stock change takes "
                                    "region and either plans, or plan and in_stock")
        if ("plans" in body) == ("plan" in body):
            raise ControlError(400, "give either plans (a list of plan ids: the region's whole "
                                    "stock) or plan and in_stock (true/false), not both or neither")
        if "plans" in body:
            plans = body["plans"]
            if not isinstance(plans, list) or not all(isinstance(p, str) for p in plans):
                raise ControlError(400, "plans: expected a list of plan id strings")
            for plan in plans:
                self._check_plan("plans", plan)
            return plans
        plan, in_stock = body["plan"], body.get("in_stock")
        self._check_plan("plan", plan)
        if not isinstance(in_stock, bool):
            raise ControlError(400, f"in_stock: expected true or false, not {shown(in_stock)}")
        stock = [p for p in self.store.stock(region) if p != plan]
        return [*stock, plan] if in_stock else stock

    def _check_plan(self, field: str, plan: object) -> None:
        if not isinstance(plan, str) or (plan not in self.store.plans
                                         and plan not in self.store.metal_plans):
            raise ControlError(400, f"{field}: unknown plan id {shown(plan)}; the plans are "
                                    "listed by GET /v2/plans?type=all and GET /v2/plans-metal")


def shown(value: object) -> str:
    """A value from the body as JSON writes it (``"x"``, ``[1]``); None says it may be missing."""
    return "null (or missing)" if value is None else json.dumps(value)


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _field_check(field: str, check: Callable[[str], object], value: str) -> None:
    try:
        check(value)
    except ValueError as exc:
        raise ControlError(400, f"{field}: {exc}") from exc


def json_body(req: Request) -> dict:
    """A control request's body, which must be a JSON object (else a 400 ControlError)."""
    try:
        value = json.loads(req.body) if req.body.strip() else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ControlError(400, f"the body is not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise ControlError(400, "the body must be a JSON object")
    return value


def _fault_fields(body: dict, route_hint: str) -> tuple[str, str, int, dict]:
    route, kind, count = body.get("route"), body.get("kind"), body.get("count", 1)
    if not isinstance(route, str) or not route.strip():
        raise ControlError(400, route_hint)
    if isinstance(kind, int) and not isinstance(kind, bool):
        kind = str(kind)  # 503 and "503" alike
    if not isinstance(kind, str):
        raise ControlError(400, f"kind: expected one of {KINDS_TEXT}, not {shown(kind)}")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise ControlError(400, f"count: expected an integer from 1 to {MAX_COUNT}, "
                                f"not {shown(count)}")
    opts = {k: v for k, v in body.items() if k not in _FAULT_FIELDS}
    return route, kind, count, opts


def _fault_json(fault: Fault) -> dict:
    return {"route": fault.route, "kind": fault.kind, "remaining": fault.remaining,
            **fault.opts}
