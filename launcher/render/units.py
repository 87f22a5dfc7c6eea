"""systemd unit files built from data: ``{section: {key: value}}`` -> unit text.

A value is one line of text, or a list of argv items (``ExecStart``) joined by spaces. Values
are checked, not escaped: no control characters (a newline would start a new directive), no
``%`` (systemd would expand it as a specifier), no trailing backslash (a continuation), and
argv items carry no spaces, quotes, backslashes or ``$`` (systemd would split, unquote or
expand them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
ARGV_ITEM = re.compile(r"^[A-Za-z0-9_./:=+,@-]+$")


class UnitError(ValueError):
    """A unit definition cannot be written safely; the message names unit, section and key."""


def unit_text(sections: Mapping[str, Mapping[str, Any]], *, unit: str = "unit") -> str:
    """The unit file for ``sections``, in the given order, ending with a newline."""
    if not sections:
        raise UnitError(f"{unit}: no sections")
    blocks = []
    for section, entries in sections.items():
        _check_name(section, f"{unit}: section")
        if not isinstance(entries, Mapping) or not entries:
            raise UnitError(f"{unit}: [{section}] must be a non-empty mapping")
        lines = [f"[{section}]"]
        for key, value in entries.items():
            where = f"{unit}: [{section}] {key}"
            _check_name(key, where)
            lines.append(f"{key}={_value(value, where)}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _check_name(name: object, where: str) -> None:
    if not isinstance(name, str) or not NAME.match(name):
        raise UnitError(f"{where}: {name!r} is not a valid systemd name")


def _value(value: Any, where: str) -> str:
    if isinstance(value, list):
        if not value:
            raise UnitError(f"{where}: an argv list must not be empty")
        for item in value:
            if not isinstance(item, str) or not ARGV_ITEM.match(item):
                raise UnitError(f"{where}: argv item {item!r} must match {ARGV_ITEM.pattern}")
        return " ".join(value)
    if not isinstance(value, str):
        raise UnitError(f"{where}: expected a string, got {type(value).__name__} "
                        "(quote YAML values such as \"no\")")
    if (not value or value != value.strip() or CONTROL.search(value) or "%" in value
            or value.endswith("\\")):
        raise UnitError(f"{where}: a value must be one trimmed, non-empty line without control "
                        "characters, '%' or a trailing backslash")
    return value
