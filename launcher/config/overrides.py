"""Command-line overrides: typed, checked by the same schema rules as the files, applied last.

:func:`add_override_flags` registers the flags on any command's parser (``run``, ``offers``,
``render``, ``config show``); :func:`overrides_from_args` reads them into :class:`Overrides`
(a bad value is a one-line ``ConfigError`` naming the flag); :func:`apply_overrides` is the one
pure function that lays them over a merged :class:`StageConfig`.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from launcher.config.cluster import check_cluster
from launcher.config.model import GpuProfile, ProfileOverrides, StageConfig
from launcher.config.schema import check_value
from launcher.errors import ConfigError
from launcher.naming import REUSABLE_VOLUME_PREFIX, reusable_volume_label

DEFS = "launcher.schema.json#/$defs/"


@dataclass(frozen=True)
class Overrides:
    """Values that replace the merged configuration's; ``None`` leaves a field alone.

    ``min_vram_gb``/``gpu_count`` replace the profile list with one profile: the preferred
    one with these values. ``command`` replaces the argv (a UPS stage's too: its launch
    flags are then not appended) and drops the profiles' extra ``args`` (their ``env``
    stays). ``reuse_volume`` is a name or a full
    ``launcher-cache-<name>`` label ("" for none); a reused volume is always kept.
    ``nodes`` replaces ``cluster.nodes`` (checked like the file's field)."""

    regions: tuple[str, ...] | None = None
    min_vram_gb: int | None = None
    gpu_count: int | None = None
    max_price_per_hour: float | None = None
    max_hours: float | None = None
    max_cost_usd: float | None = None
    snapshot: str | None = None
    command: tuple[str, ...] | None = None
    keep_volume: bool | None = None
    reuse_volume: str | None = None
    nodes: int | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in dataclasses.fields(self))


def _regions(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _argv(text: str) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(text))
    except ValueError as exc:  # shlex only splits words: nothing is expanded or run
        raise ValueError(f"cannot split into arguments ({exc})") from None


# field, flag, metavar, how to read the flag's text, the schema rule, help
FLAGS: tuple[tuple[str, str, str, Callable[[str], Any], str, str], ...] = (
    ("regions", "--regions", "A,B,C", _regions, DEFS + "regions",
     "region priority, comma-separated (replaces regions)"),
    ("min_vram_gb", "--min-vram", "GB", int, DEFS + "gpu_profile/properties/min_vram_gb",
     "minimum VRAM per GPU; replaces the GPU profiles with the preferred one at this size"),
    ("gpu_count", "--gpu-count", "N", int, DEFS + "gpu_profile/properties/gpu_count",
     "minimum number of GPUs; replaces the GPU profiles like --min-vram"),
    ("max_price_per_hour", "--max-price", "USD", float, DEFS + "max_price_per_hour",
     "ceiling of the GPU plan's price in USD per hour"),
    ("max_hours", "--max-hours", "H", float, DEFS + "max_hours", "hard ceiling of the run"),
    ("max_cost_usd", "--max-cost", "USD", float, DEFS + "max_cost_usd",
     "dollar budget of the run (brings the deadline forward)"),
    ("snapshot", "--snapshot", "latest|ID", str, DEFS + "image/properties/snapshot",
     "boot snapshot: latest (newest baked) or a snapshot id"),
    ("command", "--command", "ARGV", _argv, "stage.schema.json#/properties/command",
     "replace the stage's command; split like a shell would, but nothing is expanded or run "
     "by a shell"),
    ("reuse_volume", "--reuse-volume", "NAME", str, DEFS + "reuse_label",
     f"reuse the volume labelled {REUSABLE_VOLUME_PREFIX}NAME (kept after the run)"),
    ("nodes", "--nodes", "N", int, DEFS + "cluster/properties/nodes",
     "machines in the run, each with the chosen plan's GPUs (replaces cluster.nodes; "
     "1: one machine)"),
)
TYPE_WORDS = {int: "an integer", float: "a number"}


def add_override_flags(parser: argparse.ArgumentParser) -> None:
    """Register the override flags on ``parser`` (dests ``override_<field>``)."""
    group = parser.add_argument_group("overrides (applied over the configuration files)")
    for field, flag, metavar, _, _, text in FLAGS:
        group.add_argument(flag, dest=f"override_{field}", metavar=metavar, default=None,
                           help=text)
    group.add_argument("--keep-volume", dest="override_keep_volume", default=None,
                       action=argparse.BooleanOptionalAction,
                       help="keep (or delete) the volume after the run")


def overrides_from_args(args: argparse.Namespace) -> Overrides:
    """The flags of :func:`add_override_flags` as :class:`Overrides`; absent ones are None."""
    values: dict[str, Any] = {"keep_volume": getattr(args, "override_keep_volume", None)}
    for field, flag, _, read, _, _ in FLAGS:
        raw = getattr(args, f"override_{field}", None)
        if raw is None:
            continue
        try:
            values[field] = read(raw)
        except ValueError as exc:
            what = TYPE_WORDS.get(read)
            text = f"expected {what}, got {raw!r}" if what else str(exc)
            raise ConfigError(f"{flag}: {text}") from None
    return Overrides(**values)


def check_overrides(overrides: Overrides) -> None:
    """Raise ConfigError naming the flag of the first value its schema rule refuses."""
    for field, flag, _, _, ref, _ in FLAGS:
        value = getattr(overrides, field)
        if field == "reuse_volume" and value is not None:
            value = reuse_label_for(value)
        if value is not None:
            check_value(list(value) if isinstance(value, tuple) else value, ref, flag)


def reuse_label_for(name: str) -> str:
    """``launcher-cache-<name>`` for a name; a full label or "" unchanged."""
    if not name or name.startswith(REUSABLE_VOLUME_PREFIX):
        return name
    return reusable_volume_label(name)


def apply_overrides(stage: StageConfig, overrides: Overrides) -> StageConfig:
    """``stage`` with ``overrides`` laid over it (checked first); ``stage`` is unchanged."""
    check_overrides(overrides)
    o = overrides
    changes: dict[str, Any] = {name: value for name in
                               ("regions", "max_price_per_hour", "max_hours", "max_cost_usd")
                               if (value := getattr(o, name)) is not None}
    profiles = stage.profiles
    if o.min_vram_gb is not None or o.gpu_count is not None:
        first = profiles[0]
        profiles = (dataclasses.replace(
            first, min_vram_gb=first.min_vram_gb if o.min_vram_gb is None else o.min_vram_gb,
            gpu_count=first.gpu_count if o.gpu_count is None else o.gpu_count),)
    if o.command is not None:  # the user's command now: nothing of UPS's is appended
        changes["command"] = tuple(o.command)
        changes["ups"] = None
        profiles = tuple(_without_args(p) for p in profiles)
    if o.snapshot is not None:
        changes["image"] = dataclasses.replace(stage.image, snapshot=o.snapshot)
    if o.keep_volume is not None or o.reuse_volume is not None:
        label = stage.volume.reuse_label if o.reuse_volume is None \
            else reuse_label_for(o.reuse_volume)
        keep = stage.volume.keep if o.keep_volume is None else o.keep_volume
        changes["volume"] = dataclasses.replace(stage.volume, reuse_label=label,
                                                keep=bool(keep or label))
    if o.nodes is not None:
        changes["cluster"] = dataclasses.replace(stage.cluster, nodes=o.nodes)
    result = dataclasses.replace(stage, profiles=profiles, **changes)
    if o.nodes is not None:
        check_cluster(result, "--nodes")
    return result


def _without_args(profile: GpuProfile) -> GpuProfile:
    spent = ProfileOverrides(env=profile.overrides.env)
    return dataclasses.replace(profile, overrides=spent)
