"""Lenient readers of API dict fields: a missing or malformed optional value gives a neutral
default (or None), never an exception, so a changed API field cannot break the launcher."""

from __future__ import annotations


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
