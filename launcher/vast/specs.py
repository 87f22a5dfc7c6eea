"""What the launcher asks of Vast.ai, checked before anything is sent.

:class:`OfferQuery` builds the ``POST /bundles/`` body as vast-cli's ``search_offers`` does
(vast-ai/vast-cli ``vastai/api/offers.py``): ``{field: {op: value}}`` filters over the
defaults ``verified``/``rentable`` true and ``external``/``rented`` false, then ``order``,
``type``, ``limit`` and ``allocated_storage``.

:class:`InstanceSpec` builds the ``PUT /asks/{id}/`` body as vast-cli's ``create_instance``
does (``vastai/api/instances.py``) and enforces the limits of vast-ai/docs
``api-reference/openapi/yaml/create_instance.yaml`` (``x-input-validation``) locally, so a
bad spec is a :class:`~launcher.errors.ConfigError` before any money is at stake.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from launcher.errors import ConfigError

OPERATORS = ("eq", "neq", "gt", "gte", "lt", "lte", "in", "notin")  # search_offers.yaml
# vast-cli sends "on-demand" (offers.py); search_offers.yaml's enum says "ondemand" but its
# own example sends "on-demand": the CLI's spelling is the one known to work.
OFFER_TYPES = ("on-demand", "bid", "reserved")
RUNTYPES = ("ssh", "jupyter", "args", "ssh_proxy", "ssh_direct", "jupyter_proxy",
            "jupyter_direct")  # create_instance.yaml
MIN_DISK_GB = 8.0  # x-input-validation disk.min
MAX_ARGS_ONSTART = 4096  # "Combined length of args, args_str and onstart"
MAX_LABEL = 256
MAX_IMAGE = 1024
MAX_ENV_ENTRY = 256  # env.max_length, read as one NAME=value
MAX_ENV_TOTAL = 32768  # env.max_total_length
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _filter(value: Any) -> dict[str, Any]:
    """A filter as given (``{"gte": 4}``), or a bare value as ``eq`` (a list or tuple:
    ``in``)."""
    if isinstance(value, Mapping):
        bad = [op for op in value if op not in OPERATORS]
        if bad or not value:
            raise ConfigError(f"offer filter operators must be among {', '.join(OPERATORS)}, "
                              f"not {bad or 'none'}")
        return {op: list(v) if isinstance(v, tuple) else v for op, v in value.items()}
    if isinstance(value, (list, tuple)):
        return {"in": list(value)}
    return {"eq": value}


@dataclass(frozen=True)
class OfferQuery:
    """One offer search. ``filters`` maps an offer field to ``{op: value}`` (or a bare value
    for ``eq``, a tuple for ``in``); they override the defaults. ``gpu_name`` is as Vast
    spells it, with spaces ("RTX 4090", "A100 SXM4": vast-cli turns a query's underscores
    into spaces, vastai/api/query.py ``parse_query``). ``order`` is ``[[field, "asc"|"desc"],
    ...]``; ``allocated_storage`` (GB) is what ``dph_total`` is priced with."""

    filters: Mapping[str, Any] = field(default_factory=dict)
    type: str = "on-demand"
    order: tuple[tuple[str, str], ...] = (("score", "desc"),)
    limit: int | None = 64
    allocated_storage: float = 5.0  # vast-cli's default (offers.py ``storage=5.0``)
    verified: bool = True
    rentable: bool = True
    external: bool = False
    rented: bool = False

    def __post_init__(self) -> None:
        if self.type not in OFFER_TYPES:
            raise ConfigError(f"offer type must be one of {', '.join(OFFER_TYPES)}, "
                              f"not {self.type!r}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError("an offer search's limit must be at least 1")
        if not self.allocated_storage > 0:
            raise ConfigError("allocated_storage must be a positive number of GB")
        if any(d not in ("asc", "desc") for _, d in self.order):
            raise ConfigError("offer order directions must be 'asc' or 'desc'")
        for value in self.filters.values():
            _filter(value)
        object.__setattr__(self, "filters", MappingProxyType(dict(self.filters)))

    def body(self) -> dict[str, Any]:
        """The ``POST /bundles/`` JSON body."""
        q: dict[str, Any] = {
            "verified": {"eq": self.verified}, "external": {"eq": self.external},
            "rentable": {"eq": self.rentable}, "rented": {"eq": self.rented},
        }
        q.update({name: _filter(value) for name, value in self.filters.items()})
        q["order"] = [list(pair) for pair in self.order]
        q["type"] = self.type
        if self.limit:
            q["limit"] = int(self.limit)
        q["allocated_storage"] = self.allocated_storage
        return q


@dataclass(frozen=True)
class InstanceSpec:
    """One instance to create on an offer. ``label`` must be unique per run: an ambiguous
    create is settled by looking the instance up by it. ``env`` and ``onstart`` may hold
    secrets and never appear in the repr.

    ``env`` is sent as a JSON object ``{NAME: value}``, as vast-cli sends it (``parse_env``
    turns ``-e NAME=value`` into that object). create_instance.yaml types ``env`` as a
    string in Docker flag form (``"-e NAME=value -p 8000:8000"``); the object form is the
    one the CLI and the SDK send, so it is the one used here. ``cancel_unavail`` (true:
    an offer that cannot start now answers 410 ``no_such_ask``, create_instance.yaml) makes a
    taken offer fail fast, so a failover can move on.
    """

    image: str
    label: str
    disk_gb: float = 16.0
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    onstart: str = field(default="", repr=False)
    args: tuple[str, ...] = field(default=(), repr=False)
    runtype: str | None = None
    cancel_unavail: bool = True

    def __post_init__(self) -> None:
        if not self.image or len(self.image) > MAX_IMAGE:
            raise ConfigError(f"the image must be 1 to {MAX_IMAGE} characters")
        if not self.label or len(self.label) > MAX_LABEL:
            raise ConfigError(f"an instance label must be 1 to {MAX_LABEL} characters "
                              "(it is how a create that timed out is found again)")
        if not self.disk_gb >= MIN_DISK_GB:
            raise ConfigError(f"Vast.ai needs a disk of at least {MIN_DISK_GB:g} GB, "
                              f"not {self.disk_gb:g}")
        if self.runtype is not None and self.runtype not in RUNTYPES:
            raise ConfigError(f"runtype must be one of {', '.join(RUNTYPES)}")
        used = sum(len(a) for a in self.args) + len(self.onstart)
        if used > MAX_ARGS_ONSTART:
            raise ConfigError(f"args and onstart are {used} characters; Vast.ai takes at "
                              f"most {MAX_ARGS_ONSTART} in all")
        self._check_env()
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))
        object.__setattr__(self, "args", tuple(self.args))

    def _check_env(self) -> None:
        """Names only in the messages: a value may be a secret."""
        total = 0
        for name, value in self.env.items():
            if not isinstance(name, str) or not ENV_NAME.match(name):
                raise ConfigError(f"environment variable name {name!r} is not a valid name")
            if not isinstance(value, str):
                raise ConfigError(f"environment variable {name} must be a string")
            entry = len(name) + 1 + len(value)
            if entry > MAX_ENV_ENTRY:
                raise ConfigError(f"environment variable {name} is {entry} characters as "
                                  f"NAME=value; Vast.ai takes at most {MAX_ENV_ENTRY}")
            total += entry
        if total > MAX_ENV_TOTAL:
            raise ConfigError(f"the environment is {total} characters; Vast.ai takes at most "
                              f"{MAX_ENV_TOTAL}")

    def body(self) -> dict[str, Any]:
        """The ``PUT /asks/{id}/`` JSON body (the keys vast-cli's ``create_instance`` sends
        that the launcher sets; the rest are left to the server's defaults)."""
        body: dict[str, Any] = {
            "client_id": "me",
            "image": self.image,
            "env": dict(self.env),
            "disk": self.disk_gb,
            "label": self.label,
            "onstart": self.onstart or None,
            "cancel_unavail": self.cancel_unavail,
        }
        if self.runtype:
            body["runtype"] = self.runtype
        if self.args:
            body["args"] = list(self.args)
        return body
