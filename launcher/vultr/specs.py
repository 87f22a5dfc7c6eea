"""What to create: validated locally (``ConfigError``) before anything is sent."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from launcher.errors import ConfigError

# Sizes per block type, from Vultr's OpenAPI document (POST /blocks, block_type).
BLOCK_SIZES_GB = {"high_perf": (10, 10_000), "storage_opt": (40, 40_000)}
BLOCK_TYPES = tuple(BLOCK_SIZES_GB)


@dataclass(frozen=True)
class InstanceSpec:
    """What to create. Exactly one of ``os_id``, ``snapshot_id``, ``image_id``, ``app_id``,
    ``iso_id``. ``label`` is required: it is how an ambiguous create is resolved. ``user_data``
    (often secret) is base64-encoded on the wire and kept out of ``repr``."""

    region: str
    plan: str
    label: str
    os_id: int | None = None
    snapshot_id: str | None = None
    image_id: str | None = None
    app_id: int | None = None
    iso_id: str | None = None
    hostname: str | None = None
    tags: tuple[str, ...] = ()
    user_data: bytes | str | None = field(default=None, repr=False)
    sshkey_ids: tuple[str, ...] = ()
    enable_ipv6: bool = False
    # Sent explicitly (as terraform-provider-vultr does): automatic backups bill extra.
    backups: str = "disabled"
    # VPC ids to attach at create (``attach_vpc``); sent only when there are some.
    attach_vpc: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "sshkey_ids", tuple(self.sshkey_ids))
        object.__setattr__(self, "attach_vpc", tuple(self.attach_vpc))
        if any(not vpc for vpc in self.attach_vpc):
            raise ConfigError("an empty VPC id cannot be attached")
        for name in ("region", "plan", "label"):
            if not getattr(self, name):
                raise ConfigError(f"an instance needs a {name}")
        sources = [
            n
            for n in ("os_id", "snapshot_id", "image_id", "app_id", "iso_id")
            if getattr(self, n) not in (None, "")
        ]
        if len(sources) != 1:
            raise ConfigError(
                "an instance needs exactly one of os_id, snapshot_id, image_id, app_id, "
                f"iso_id (got {', '.join(sources) or 'none'})"
            )

    def body(self) -> dict[str, Any]:
        """The ``POST /instances`` body."""
        body: dict[str, Any] = {
            "region": self.region,
            "plan": self.plan,
            "label": self.label,
            "tags": list(self.tags),
        }
        for name in ("os_id", "snapshot_id", "image_id", "app_id", "iso_id", "hostname"):
            if getattr(self, name) not in (None, ""):
                body[name] = getattr(self, name)
        if self.user_data is not None:
            raw = self.user_data.encode() if isinstance(self.user_data, str) else self.user_data
            body["user_data"] = base64.b64encode(raw).decode("ascii")
        if self.sshkey_ids:
            body["sshkey_id"] = list(self.sshkey_ids)
        if self.enable_ipv6:
            body["enable_ipv6"] = True
        if self.attach_vpc:
            body["attach_vpc"] = list(self.attach_vpc)
        body["backups"] = self.backups
        return body


@dataclass(frozen=True)
class BlockSpec:
    """A block volume to create. ``high_perf`` (NVMe) takes 10-10,000 GB, ``storage_opt``
    (HDD) 40-40,000 GB (Vultr's OpenAPI document, POST /blocks)."""

    region: str
    size_gb: int
    label: str
    block_type: str = "high_perf"

    def __post_init__(self) -> None:
        if not self.region or not self.label:
            raise ConfigError("a block volume needs a region and a label")
        if self.block_type not in BLOCK_TYPES:
            raise ConfigError(f"block_type must be one of {', '.join(BLOCK_TYPES)}")
        low, high = BLOCK_SIZES_GB[self.block_type]
        if not isinstance(self.size_gb, int) or not low <= self.size_gb <= high:
            raise ConfigError(
                f"a {self.block_type} volume takes {low}-{high} GB, not {self.size_gb!r}"
            )

    def body(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "size_gb": self.size_gb,
            "label": self.label,
            "block_type": self.block_type,
        }
