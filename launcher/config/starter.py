"""The starter configuration ``launcher init`` writes into a training checkout.

A copy of the shipped ``launcher.yaml`` and stage files (all but the offline demo's
``example`` stage, whose code is the launcher's own example) into ``<checkout>/.launcher/``,
the folder every command reads first when it exists. All or nothing: a file that is already
there stops it before anything is written, and a failure part-way removes what it wrote.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from launcher.config.view import TRAINING_CHECKOUT_DIR
from launcher.errors import ConfigError
from launcher.resources import starter_configs

DEMO_ONLY = {"example.yaml"}
# What tells a UPS checkout (its stages run this script through its own command line).
UPS_ENTRY = Path("scripts") / "run_fast_to_sota.py"


@dataclass(frozen=True)
class Starter:
    """What :func:`write_starter` wrote, and whether ``checkout`` looks like UPS."""

    config_dir: Path
    written: tuple[Path, ...]
    is_ups: bool


def starter_files(source: Path | None = None) -> list[Path]:
    """The shipped files ``init`` copies, relative to the shipped configs folder."""
    root = source or starter_configs()
    stages = sorted(p for p in (root / "stages").glob("*.yaml") if p.name not in DEMO_ONLY)
    return [Path("launcher.yaml"), *(p.relative_to(root) for p in stages)]


def write_starter(checkout: Path, source: Path | None = None) -> Starter:
    """Copy the starter files into ``checkout/.launcher``; refuse (ConfigError) when
    ``checkout`` is not a folder or any of the files already exists there."""
    if not checkout.is_dir():
        raise ConfigError(f"{checkout}: not a folder (expected the training checkout to "
                          "write .launcher/ into)")
    root = source or starter_configs()
    dest = checkout / TRAINING_CHECKOUT_DIR
    names = starter_files(root)
    there = [str(n) for n in names if (dest / n).exists() or (dest / n).is_symlink()]
    if there:
        raise ConfigError(f"{dest}: {', '.join(there)} already there; nothing was written "
                          "(edit those files, or move them away and run init again)")
    made = [d for d in (dest / "stages", dest) if not d.exists()]
    written: list[Path] = []
    try:
        (dest / "stages").mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copyfile(root / name, dest / name)
            written.append(dest / name)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        for folder in made:
            folder.rmdir()
        raise
    return Starter(dest, tuple(written), (checkout / UPS_ENTRY).is_file())
