"""``GET /api/v1/instances/``: keyset pages of at most 25, ``select_filters``, ``order_by``.

``next_token`` is base64 of ``{"values": {...}}``, the shape of show_instances.yaml's example
token (``eyJ2YWx1ZXMiOiB7ImlkIjogMTIzfX0=`` is ``{"values": {"id": 123}}``).
"""

from __future__ import annotations

import base64
import binascii
import json

from launcher.emulator.vast.errors import VastRefusal
from launcher.emulator.vast.offers import predicates
from launcher.emulator.wire import Request

MAX_LIMIT = 25
FILTERABLE = ("id", "label", "actual_status", "intended_status", "cur_state", "gpu_name",
              "machine_id", "image_uuid")


def _json_arg(req: Request, name: str, default: object) -> object:
    raw = req.arg(name)
    if raw is None or raw == "":
        return default
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise VastRefusal(400, "bad_query", detail=f"{name} is not valid JSON") from exc


def _limit(req: Request) -> int:
    raw = req.arg("limit")
    if raw is None or raw == "":
        return MAX_LIMIT
    try:
        value = int(raw)
    except ValueError as exc:
        raise VastRefusal(400, "bad_query", detail="limit must be an integer") from exc
    return 5 if value <= 0 else min(value, MAX_LIMIT)


def _order(req: Request) -> list[tuple[str, bool]]:
    raw = _json_arg(req, "order_by", [])
    if not isinstance(raw, list):
        raise VastRefusal(400, "bad_query", detail="order_by must be a list")
    order: list[tuple[str, bool]] = []
    for entry in raw:
        col = entry.get("col") if isinstance(entry, dict) else None
        if col not in FILTERABLE:
            raise VastRefusal(400, "bad_key", field=col)
        order.append((col, entry.get("dir") == "desc"))
    if not any(col == "id" for col, _ in order):
        order.append(("id", False))  # "id is always appended as a tiebreaker"
    return order


def _key(row: dict, order: list[tuple[str, bool]]) -> tuple:
    """A sort key where every column sorts ascending (desc columns negated or inverted)."""
    parts = []
    for col, desc in order:
        value = row.get(col)
        text = "" if value is None else value
        if isinstance(text, (int, float)):
            parts.append((0, -text if desc else text))
        else:
            inverted = tuple(-ord(c) for c in str(text)) + (1,) if desc else str(text)
            parts.append((1, inverted))
    return tuple(parts)


def _token(row: dict, order: list[tuple[str, bool]]) -> str:
    values = {col: row.get(col) for col, _ in order}
    return base64.b64encode(json.dumps({"values": values}).encode()).decode()


def _after(token: str, order: list[tuple[str, bool]]) -> tuple:
    try:
        values = json.loads(base64.b64decode(token.encode(), validate=True))["values"]
        return _key({col: values[col] for col, _ in order}, order)
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise VastRefusal(400, "bad_token") from exc


def list_v1(views: list[dict], req: Request) -> dict:
    """One page of ``views`` (instance rows) as the v1 endpoint answers it."""
    filters = _json_arg(req, "select_filters", {})
    if not isinstance(filters, dict):
        raise VastRefusal(400, "bad_query", detail="select_filters must be an object")
    checks = predicates(filters, FILTERABLE)
    order = _order(req)
    rows = sorted((v for v in views if all(c(v) for c in checks)), key=lambda r: _key(r, order))
    token = req.arg("after_token")
    if token:
        start = _after(token, order)
        rows_after = [r for r in rows if _key(r, order) > start]
    else:
        rows_after = rows
    limit = _limit(req)
    page = rows_after[:limit]
    more = len(rows_after) > limit
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.get("label") or ""] = counts.get(row.get("label") or "", 0) + 1
    return {"success": True, "instances_found": len(page), "total_instances": len(rows),
            "label_counts": counts, "next_token": _token(page[-1], order) if more else None,
            "instances": page}
