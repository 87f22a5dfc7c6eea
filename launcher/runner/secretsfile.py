"""The root-only secrets file (``NAME=value`` lines) and keeping its values out of text.

Shared by the bootstrap and the runner; standard library only (it travels in ``boot.pyz``).
:func:`scrub_values` is the one secret scrubber: the runner's logs, status and uploads, the
bootstrap's, and the launcher's :func:`launcher.secrets.redact` all use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import AnyStr

SECRET_NAMES = ("VULTR_KEY", "B2_KEY_ID", "B2_APP_KEY", "WANDB_API_KEY")
MIN_SCRUB_LEN = 4  # shorter values would blank ordinary words
REDACTED = "***"


def read_env_file(path: str | Path, names: Iterable[str]) -> dict[str, str]:
    """``NAME=value`` per line (``#`` comments, blank lines) with every NAME in ``names``;
    ValueError naming the file and line otherwise. A value is never part of an error."""
    allowed = tuple(names)
    values: dict[str, str] = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or name.strip() not in allowed:
            raise ValueError(f"{path}:{number}: expected NAME=value with NAME in {allowed}")
        values[name.strip()] = value
    return values


def scrub_values(text: AnyStr, values: Iterable[str]) -> AnyStr:
    """``text`` with every value of at least :data:`MIN_SCRUB_LEN` characters as ``***``;
    ``text`` may be bytes (the values are then matched as UTF-8). The longest value goes
    first, so one that holds another is never left half shown."""
    wanted = sorted({v for v in values if len(v) >= MIN_SCRUB_LEN}, key=len, reverse=True)
    if isinstance(text, bytes):
        for value in wanted:
            text = text.replace(value.encode(), REDACTED.encode())
        return text
    for value in wanted:
        text = text.replace(value, REDACTED)
    return text
