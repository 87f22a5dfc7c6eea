"""What a narrow terminal must still show: each id, region, price whole on one line."""

from __future__ import annotations

NARROW = ("80", "60")


def cut_or_split(out: str, words: list[str]) -> list[str]:
    """The ``words`` that ``out`` does not show whole on one line, or shows cut (a prefix of
    three characters or more followed by "…")."""
    lines = out.splitlines()
    return [w for w in dict.fromkeys(words)
            if not any(w in line for line in lines)
            or any(f"{w[:k]}…" in out for k in range(3, len(w)))]
