"""The route table: method + path template → handler, and whether it needs the API key.

Templates are written without the ``/v2`` prefix and with ``{id}`` for every path parameter,
which is also how ``Emulator.inject`` and ``Event.route`` name them.
"""

from __future__ import annotations

from dataclasses import dataclass

from launcher.emulator import handlers as h
from launcher.emulator.errors import Refusal

API_PREFIX = "/v2"


def template_ids(template: str, segments: list[str]) -> list[str] | None:
    """The ``{id}`` values when a path's ``segments`` fit ``template``, else None."""
    parts = template.strip("/").split("/")
    if len(parts) != len(segments):
        return None
    ids: list[str] = []
    for part, segment in zip(parts, segments, strict=True):
        if part == "{id}" and segment:
            ids.append(segment)
        elif part != segment:
            return None
    return ids


@dataclass(frozen=True)
class Route:
    """One endpoint. ``public`` endpoints answer without an ``Authorization`` header."""

    method: str
    template: str
    handler: h.Handler
    public: bool = False
    reads: bool = False  # Vultr's reads are all GETs

    @property
    def key(self) -> str:
        """``"METHOD /template"``, the name faults are armed with."""
        return f"{self.method} {self.template}"

    def params(self, segments: list[str]) -> list[str] | None:
        return template_ids(self.template, segments)


ROUTES: tuple[Route, ...] = (
    Route("GET", "/regions", h.list_regions, public=True),
    Route("GET", "/regions/{id}/availability", h.availability, public=True),
    Route("GET", "/plans", h.list_plans, public=True),
    Route("GET", "/plans-metal", h.list_metal_plans, public=True),
    Route("GET", "/os", h.list_os, public=True),
    Route("GET", "/instances", h.list_instances),
    Route("POST", "/instances", h.create_instance),
    Route("GET", "/instances/{id}", h.get_instance),
    Route("DELETE", "/instances/{id}", h.delete_instance),
    Route("GET", "/instances/{id}/user-data", h.get_user_data),
    Route("GET", "/instances/{id}/vpcs", h.list_instance_vpcs),
    Route("GET", "/blocks", h.list_blocks),
    Route("POST", "/blocks", h.create_block),
    Route("GET", "/blocks/{id}", h.get_block),
    Route("PATCH", "/blocks/{id}", h.update_block),
    Route("DELETE", "/blocks/{id}", h.delete_block),
    Route("POST", "/blocks/{id}/attach", h.attach_block),
    Route("POST", "/blocks/{id}/detach", h.detach_block),
    Route("GET", "/snapshots", h.list_snapshots),
    Route("POST", "/snapshots", h.create_snapshot),
    Route("GET", "/snapshots/{id}", h.get_snapshot),
    Route("DELETE", "/snapshots/{id}", h.delete_snapshot),
    Route("GET", "/ssh-keys", h.list_ssh_keys),
    Route("POST", "/ssh-keys", h.create_ssh_key),
    Route("GET", "/ssh-keys/{id}", h.get_ssh_key),
    Route("DELETE", "/ssh-keys/{id}", h.delete_ssh_key),
    Route("GET", "/vpcs", h.list_vpcs),
    Route("POST", "/vpcs", h.create_vpc),
    Route("GET", "/vpcs/{id}", h.get_vpc),
    Route("PUT", "/vpcs/{id}", h.update_vpc),
    Route("DELETE", "/vpcs/{id}", h.delete_vpc),
    Route("GET", "/account", h.get_account),
    Route("GET", "/users", h.list_users),
    Route("GET", "/users/{id}", h.get_user),
)

ROUTE_KEYS: frozenset[str] = frozenset(r.key for r in ROUTES)


def match(method: str, path: str) -> tuple[Route, list[str]]:
    """The route for ``method path`` (path with ``/v2``): 404 if no template fits the path,
    405 with ``Allow`` if one fits but not for this method."""
    if not path.startswith(API_PREFIX + "/"):
        raise Refusal(404, "no_route")
    segments = path[len(API_PREFIX) + 1:].split("/")
    allowed: list[str] = []
    for route in ROUTES:
        ids = route.params(segments)
        if ids is None:
            continue
        if route.method == method:
            return route, ids
        allowed.append(route.method)
    if not allowed:
        raise Refusal(404, "no_route")
    raise Refusal(405, "bad_method", headers={"Allow": ", ".join(sorted(set(allowed)))})
