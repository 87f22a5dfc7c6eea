"""Where the launcher keeps files of its own on this machine: ``$XDG_CACHE_HOME/launcher``,
else ``~/.cache/launcher`` — run locks, pinned SSH host keys, the built runner, VM images.
Nothing there is needed for correctness: each user of it rebuilds what is missing."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def user_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/launcher``, else ``$HOME/.cache/launcher``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home(), ".cache"))
    return Path(base) / "launcher"
