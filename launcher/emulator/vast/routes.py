"""The Vast route table and :class:`VastDialect`: routes, auth and Vast's error envelope.

Templates are full paths with ``{id}``; ``Emulator.inject`` names them without the
``/api/v0`` prefix ("PUT /asks/{id}/"), the v1 list as "GET /api/v1/instances/". A path is
matched with or without its trailing slash (vast-cli calls ``/users/current`` without one).
"""

from __future__ import annotations

from dataclasses import dataclass

from launcher.emulator.dialect import status_phrase
from launcher.emulator.errors import Refusal
from launcher.emulator.keys import MAIN_KEY, Verdict
from launcher.emulator.routes import template_ids
from launcher.emulator.vast import handlers as h
from launcher.emulator.vast.errors import RATE_LIMITED_TEXT, VAST_ERRORS, VastRefusal
from launcher.emulator.vast.state import INSTANCE_KEY_PREFIX
from launcher.emulator.wire import Request, Response

V0 = "/api/v0"


@dataclass(frozen=True)
class VastRoute:
    """One endpoint; ``instance_key`` ones also take the instance's own restricted key."""

    method: str
    template: str
    handler: h.Handler
    public: bool = False
    instance_key: bool = False
    reads: bool = False  # a POST that only reads (the offer search)

    @property
    def key(self) -> str:
        path = self.template[len(V0):] if self.template.startswith(V0 + "/") else self.template
        return f"{self.method} {path}"

    def params(self, segments: list[str]) -> list[str] | None:
        return template_ids(self.template, segments)


ROUTES: tuple[VastRoute, ...] = (
    VastRoute("POST", V0 + "/bundles/", h.search_offers, reads=True),
    VastRoute("PUT", V0 + "/asks/{id}/", h.create_instance),
    VastRoute("GET", V0 + "/instances/", h.list_v0),
    VastRoute("GET", "/api/v1/instances/", h.list_instances),
    VastRoute("GET", V0 + "/instances/{id}/", h.show_instance, instance_key=True),
    VastRoute("PUT", V0 + "/instances/{id}/", h.manage_instance, instance_key=True),
    VastRoute("DELETE", V0 + "/instances/{id}/", h.destroy_instance, instance_key=True),
    VastRoute("PUT", V0 + "/instances/request_logs/{id}/", h.request_logs),
    VastRoute("GET", V0 + "/users/current/", h.current_user),
    VastRoute("GET", V0 + "/ssh/", h.list_ssh_keys),
    VastRoute("POST", V0 + "/ssh/", h.create_ssh_key),
    VastRoute("DELETE", V0 + "/ssh/{id}/", h.delete_ssh_key),
    VastRoute("GET", "/instance_logs/{id}", h.fetch_logs, public=True),
)
ROUTE_KEYS: frozenset[str] = frozenset(r.key for r in ROUTES)


def vast_body(status: int, code: str, text: str) -> Response:
    return Response(status, {"success": False, "error": code, "msg": text})


class VastDialect:
    """Vast's pipeline rules: bearer auth with per-instance keys, ``{success, error, msg}``."""

    def match(self, method: str, path: str) -> tuple[VastRoute, list[str]]:
        segments = path.strip("/").split("/")
        allowed = []
        for route in ROUTES:
            ids = route.params(segments)
            if ids is None:
                continue
            if route.method == method:
                return route, ids
            allowed.append(route.method)
        if allowed:
            raise VastRefusal(405, "bad_method", headers={"Allow": ", ".join(sorted(allowed))})
        raise VastRefusal(404, "no_route")

    def authorize(self, route: VastRoute, ids: list[str], verdict: Verdict,  # type: ignore[override]
                  req: Request) -> None:
        if route.public or (verdict.accepted and verdict.name == MAIN_KEY):
            return
        if not verdict.accepted:
            raise VastRefusal(401, "auth")
        own = verdict.name.removeprefix(INSTANCE_KEY_PREFIX)
        if not (route.instance_key and ids and ids[0] == own):
            raise VastRefusal(403, "scope")
        if route.method == "PUT" and set(h.body_of(req)) - {"state"}:
            raise VastRefusal(403, "scope")  # start/stop only: no relabelling

    def refusal(self, refusal: Refusal) -> Response:
        if isinstance(refusal, VastRefusal):
            return Response(refusal.status, refusal.body(), refusal.headers)
        return vast_body(refusal.status, "invalid_args", refusal.text)

    def refused(self, status: int, error: str) -> Response:
        code, text = VAST_ERRORS[error]  # a text's {placeholders} are sent as they are
        return vast_body(status, code, text)

    def rate_limited(self, retry_after: int | None) -> Response:
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        return Response(429, {"detail": RATE_LIMITED_TEXT}, headers)

    def status_error(self, status: int) -> Response:
        return vast_body(status, "server_error", status_phrase(status))

    def internal(self) -> Response:
        return vast_body(500, *VAST_ERRORS["internal"])
