"""Baked images: the snapshots ``make bake-image`` leaves in the account, read back.

A bake describes its snapshot ``<prefix><os>-<driver>-<cuda>-<yyyymmdd>`` (see
``packer/gpu-image.pkr.hcl``), e.g. ``launcher-gpu-ubuntu2204-550-12.4-20261101``.
:func:`list_images` lists the account's snapshots newest first with those fields parsed, and
marks the one ``image: latest`` resolves to and the one a stage boots, both chosen by
:func:`launcher.provision.plan.choose_snapshot` (the rule ``launcher run`` uses; there is no
second one here). :func:`last_bake` reads packer's manifest of the last ``make bake-image``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from launcher.config import ImageConfig
from launcher.errors import ConfigError
from launcher.localfiles import read_text
from launcher.providers import ImageRef, Provider
from launcher.provision.model import SnapshotChoice
from launcher.provision.plan import choose_snapshot, snapshot_created_key

# Vultr bills stored snapshots at $0.05 per GB per month (docs.vultr.com, "Does Vultr charge for
# stored snapshots?", September 2025).
SNAPSHOT_USD_PER_GB_MONTH = 0.05
GIB = 1024**3
MAX_MANIFEST_BYTES = 16 * 1024 * 1024  # packer appends a build per bake: years of bakes
_NAME = re.compile(r"(?P<os>[a-z]+[0-9]+)-(?P<driver>[0-9]+)-(?P<cuda>[0-9]+\.[0-9]+)"
                   r"-(?P<date>[0-9]{8})")


@dataclass(frozen=True)
class ImageName:
    """The fields a bake writes into a snapshot description after the prefix."""

    os: str
    driver: str
    cuda: str
    date: str

    @classmethod
    def parse(cls, description: str, prefix: str) -> ImageName | None:
        """``launcher-gpu-ubuntu2204-550-12.4-20261101`` -> its fields; None when the
        description does not start with ``prefix`` or does not follow the format."""
        if not description.startswith(prefix):
            return None
        found = _NAME.fullmatch(description[len(prefix):])
        return cls(**found.groupdict()) if found else None


@dataclass(frozen=True)
class BakedImage:
    """One snapshot as ``launcher images`` shows it. ``baked``: its description starts with
    the prefix; ``latest``: ``image: latest`` resolves to it; ``selected``: the stage boots it."""

    snapshot: ImageRef
    name: ImageName | None
    baked: bool
    latest: bool = False
    selected: bool = False

    @property
    def size_gib(self) -> float:
        return self.snapshot.size_bytes / GIB

    @property
    def usd_per_month(self) -> float:
        """Storage cost, an estimate: size × Vultr's list price per GB-month."""
        return self.size_gib * SNAPSHOT_USD_PER_GB_MONTH

    def as_dict(self) -> dict[str, Any]:
        s = self.snapshot
        fields = ({"os": self.name.os, "driver": self.name.driver, "cuda": self.name.cuda,
                   "baked_on": self.name.date} if self.name else
                  {"os": None, "driver": None, "cuda": None, "baked_on": None})
        return {"id": s.id, "description": s.description, **fields, "status": s.status,
                "size_bytes": s.size_bytes, "date_created": s.created, "baked": self.baked,
                "latest": self.latest, "selected": self.selected,
                "usd_per_month_estimate": round(self.usd_per_month, 2)}


@dataclass(frozen=True)
class ImageListing:
    """What ``launcher images`` shows. ``images`` newest first. ``latest``: what
    ``image: latest`` resolves to (None: ``latest_error`` says why); ``selected``: what the
    stage's ``image.snapshot`` (``latest`` or an id) boots (None: ``selected_error``)."""

    image: ImageConfig
    images: tuple[BakedImage, ...]
    latest: SnapshotChoice | None
    latest_error: str
    selected: SnapshotChoice | None
    selected_error: str

    def as_dict(self) -> dict[str, Any]:
        def choice(c: SnapshotChoice | None, error: str) -> dict[str, Any]:
            if c is None:
                return {"id": None, "description": None, "why": None, "error": error}
            return {"id": c.id, "description": c.description, "why": c.why, "error": None}

        return {"snapshot_prefix": self.image.snapshot_prefix,
                "image_snapshot": self.image.snapshot,
                "latest": choice(self.latest, self.latest_error),
                "selected": choice(self.selected, self.selected_error),
                "images": [i.as_dict() for i in self.images]}


def list_images(provider: Provider, image: ImageConfig, *,
                include_all: bool = False) -> ImageListing:
    """The account's snapshots described ``image.snapshot_prefix…`` (every snapshot with
    ``include_all``), newest first, with the choices of ``latest`` and of ``image``.
    A failed API call raises; only "nothing to choose" is reported as an error text."""
    latest, latest_error = _choose(provider, replace(image, snapshot="latest"))
    if image.wants_latest:
        selected, selected_error = latest, latest_error
    else:
        selected, selected_error = _choose(provider, image)
    snaps = sorted(provider.list_images(), key=snapshot_created_key, reverse=True)
    prefix = image.snapshot_prefix
    shown = [s for s in snaps if include_all or s.description.startswith(prefix)]
    images = tuple(BakedImage(s, ImageName.parse(s.description, prefix),
                              baked=s.description.startswith(prefix),
                              latest=latest is not None and s.id == latest.id,
                              selected=selected is not None and s.id == selected.id)
                   for s in shown)
    return ImageListing(image, images, latest, latest_error, selected, selected_error)


def _choose(provider: Provider, image: ImageConfig) -> tuple[SnapshotChoice | None, str]:
    try:
        return choose_snapshot(provider, image), ""
    except ConfigError as exc:
        return None, exc.message


# -- packer's manifest ---------------------------------------------------------------------

@dataclass(frozen=True)
class BakeRecord:
    """The last build recorded in packer's manifest: the snapshot id and its description."""

    snapshot_id: str
    description: str
    build_time: int | None
    custom_data: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {"snapshot_id": self.snapshot_id, "description": self.description,
                "build_time": self.build_time, "custom_data": dict(self.custom_data)}


def last_bake(path: Path) -> BakeRecord:
    """The build of the manifest's last run (``last_run_uuid``; else its last build).
    Raises ConfigError naming the file when it is missing or not a packer manifest."""
    if not path.exists():
        raise ConfigError(f"{path}: no such manifest: `make bake-image` writes it after a "
                          "successful bake")
    text = read_text(path, expected="packer's JSON manifest", limit=MAX_MANIFEST_BYTES)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: not a readable JSON manifest ({exc})") from None
    builds = data.get("builds") if isinstance(data, dict) else None
    if not isinstance(builds, list) or not builds or not all(isinstance(b, dict)
                                                              for b in builds):
        raise ConfigError(f"{path}: field builds: expected a non-empty list of builds")
    run = data.get("last_run_uuid")
    build = [b for b in builds if b.get("packer_run_uuid") == run][-1:] or builds[-1:]
    return _record(path, build[0])


def _record(path: Path, build: dict[str, Any]) -> BakeRecord:
    snapshot_id = build.get("artifact_id")
    if not isinstance(snapshot_id, str) or not snapshot_id:
        raise ConfigError(f"{path}: field builds[].artifact_id: expected the snapshot id")
    custom = build.get("custom_data") if isinstance(build.get("custom_data"), dict) else {}
    custom = {str(k): str(v) for k, v in custom.items()}
    build_time = build.get("build_time")
    return BakeRecord(snapshot_id, custom.get("snapshot_description", ""),
                      build_time if isinstance(build_time, int) else None, custom)
