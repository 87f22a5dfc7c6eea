"""Lenient readers of API dict fields: a missing or malformed optional value gives a neutral
default (or None), never an exception, so a changed API field cannot break the launcher.

:class:`ApiRecord` builds a frozen dataclass from an API dict with these readers, chosen by
each field's annotation; ``field(metadata={"api": "name"})`` reads a differently named key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any, TypeVar

from launcher.errors import ApiError

R = TypeVar("R", bound="ApiRecord")
JSON_NAMES = {type(None): "null", bool: "a boolean", int: "a number", float: "a number",
              str: "a string", list: "an array"}


def _str(d: dict, key: str) -> str:
    value = d.get(key)
    return "" if value is None else str(value)


def _opt_str(d: dict, key: str) -> str | None:
    value = d.get(key)
    return str(value) if value not in (None, "") else None


def _int(d: dict, key: str) -> int:
    value = _opt_float(d, key)
    return int(value) if value is not None else 0


def _opt_int(d: dict, key: str) -> int | None:
    value = _opt_float(d, key)
    return int(value) if value is not None else None


def _float(d: dict, key: str) -> float:
    value = _opt_float(d, key)
    return value if value is not None else 0.0


def _opt_float(d: dict, key: str) -> float | None:
    value = d.get(key)
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _strs(d: dict, key: str) -> tuple[str, ...]:
    value = d.get(key)
    if not isinstance(value, (list, tuple)):
        return ()
    return tuple(str(v) for v in value)


def _bool(d: dict, key: str) -> bool:
    return d.get(key) is True


def _opt_bool(d: dict, key: str) -> bool | None:
    value = d.get(key)
    return value if isinstance(value, bool) else None


def _region_hourly(d: dict, key: str) -> tuple[tuple[str, float], ...]:
    """``{region: {"hourly_cost": x, ...}}`` -> ``((region, x), ...)``, priced regions only."""
    value = d.get(key)
    if not isinstance(value, dict):
        return ()
    found = ((str(r), _opt_float(c, "hourly_cost")) for r, c in value.items()
             if isinstance(c, dict))
    return tuple((region, cost) for region, cost in found if cost is not None and cost > 0)


# Keyed by the annotation as written (records use postponed annotations, so these are strings).
READERS: dict[str, Callable[[dict, str], Any]] = {
    "str": _str,
    "str | None": _opt_str,
    "int": _int,
    "int | None": _opt_int,
    "float": _float,
    "float | None": _opt_float,
    "bool": _bool,
    "bool | None": _opt_bool,
    "tuple[str, ...]": _strs,
    "tuple[tuple[str, float], ...]": _region_hourly,
}


class ApiRecord:
    """Mixin for frozen dataclasses read from the API: unknown keys ignored, missing tolerated."""

    @classmethod
    def from_api(cls: type[R], d: dict[str, Any]) -> R:
        if not isinstance(d, dict):  # a record that is not an object: the API changed shape
            raise ApiError(f"Vultr answered {JSON_NAMES.get(type(d), 'a value')} where a "
                           f"{cls.__name__} object belongs")
        values = {f.name: READERS[f.type](d, f.metadata.get("api", f.name)) for f in fields(cls)}
        return cls(**values)
