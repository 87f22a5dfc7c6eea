"""Times as people and APIs write them: the launcher's one reader of ISO 8601 timestamps and
its one way to show a span of seconds. Standard library only."""

from __future__ import annotations

from datetime import datetime, timezone


def parse_time(text: object) -> float | None:
    """Epoch seconds of an ISO 8601 time (``Z`` or an offset; naive means UTC), else None.

    Reads Vultr's ``date_created``, s5cmd's ``last_modified`` and the runner's ``updated``
    alike; anything empty or unreadable is None (``Z`` is rewritten for Python 3.10)."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def duration(seconds: float | None) -> str:
    """``45 s``, ``12 min``, ``3 h 05 min``, ``2 d 4 h``; ``-`` for None. The sign is dropped:
    callers say "in …" or "… ago" themselves."""
    if seconds is None:
        return "-"
    s = int(abs(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"
