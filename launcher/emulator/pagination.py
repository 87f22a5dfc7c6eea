"""Cursor pagination shared by every list endpoint.

``per_page`` defaults to 100 and is clamped to 500; anything not a positive integer is a 400.
A cursor is opaque to clients (base64 of a versioned offset) and ``meta.links.next`` is the
empty string on the last page, as Vultr sends it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import TypeVar

from launcher.emulator.errors import Refusal

DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 500
_PREFIX = "emu-cursor:v1:"

T = TypeVar("T")


def encode_cursor(offset: int) -> str:
    """An opaque token for a list position."""
    return base64.urlsafe_b64encode(f"{_PREFIX}{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The list position in ``cursor``; a 400 refusal for anything this module did not make."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise Refusal(400, "bad_cursor") from exc
    digits = text[len(_PREFIX):]
    if not text.startswith(_PREFIX) or not digits.isdigit() or not digits.isascii():
        raise Refusal(400, "bad_cursor")
    return int(digits)


def parse_per_page(raw: str | None) -> int:
    """``per_page`` from the query string: default 100, clamped to 500, at least 1."""
    if raw is None or raw == "":
        return DEFAULT_PER_PAGE
    try:
        value = int(raw)
    except ValueError as exc:
        raise Refusal(400, "bad_per_page") from exc
    if value < 1:
        raise Refusal(400, "bad_per_page")
    return min(value, MAX_PER_PAGE)


def paginate(items: Sequence[T], per_page: str | None,
             cursor: str | None) -> tuple[list[T], dict]:
    """One page of ``items`` and its ``meta`` object (``total``, ``links.next``/``prev``)."""
    size = parse_per_page(per_page)
    offset = decode_cursor(cursor) if cursor else 0
    if offset > len(items):
        raise Refusal(400, "bad_cursor")
    end = offset + size
    links = {
        "next": encode_cursor(end) if end < len(items) else "",
        "prev": encode_cursor(max(0, offset - size)) if offset > 0 else "",
    }
    return list(items[offset:end]), {"total": len(items), "links": links}
