"""What differs between the emulated providers' APIs, as seen by the shared pipeline.

:class:`launcher.emulator.app.App` runs every request through the same steps (rate limit,
route, auth, fault, handler, event); a :class:`Dialect` supplies the provider's routes and
how it words each kind of refusal. :class:`VultrDialect` is Vultr API v2's.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any, Protocol

from launcher.emulator.errors import ERRORS, Refusal
from launcher.emulator.keys import Verdict
from launcher.emulator.routes import match
from launcher.emulator.wire import Request, Response, error_response


class RouteLike(Protocol):
    """What the pipeline reads from a route: its fault key, template, handler and auth."""

    @property
    def key(self) -> str: ...

    @property
    def template(self) -> str: ...

    @property
    def public(self) -> bool: ...

    @property
    def reads(self) -> bool:
        """A POST that only reads (Vast's offer search): not counted as a mutation."""
        ...

    @property
    def handler(self) -> Callable[[Any, Request, list[str]], Response]: ...


class Dialect(Protocol):
    """A provider's routes and error wordings."""

    def match(self, method: str, path: str) -> tuple[RouteLike, list[str]]:
        """The route and path ids for a request; raise a :class:`Refusal` for 404/405."""

    def authorize(self, route: RouteLike, ids: list[str], verdict: Verdict,
                  req: Request) -> None:
        """Raise a :class:`Refusal` unless ``verdict`` may call ``route`` for ``ids``."""

    def refusal(self, refusal: Refusal) -> Response:
        """The answer to a raised refusal."""

    def refused(self, status: int, error: str) -> Response:
        """The answer of a ``refuse`` fault: ``error`` is a key of the dialect's table."""

    def rate_limited(self, retry_after: int | None) -> Response:
        """A 429; ``retry_after`` None sends no ``Retry-After`` header."""

    def status_error(self, status: int) -> Response:
        """A bare 5xx (an injected status, or a hang answered 504)."""

    def internal(self) -> Response:
        """The 500 for an exception the emulator did not inject."""


def status_phrase(code: int) -> str:
    """``HTTPStatus``'s phrase for ``code`` ("Service Unavailable"), or "Error"."""
    return HTTPStatus(code).phrase if code in HTTPStatus._value2member_map_ else "Error"


class VultrDialect:
    """Vultr API v2: ``{"error": TEXT, "status": N}`` with the texts of :data:`ERRORS`."""

    def match(self, method: str, path: str) -> tuple[RouteLike, list[str]]:
        return match(method, path)

    def authorize(self, route: RouteLike, ids: list[str], verdict: Verdict,
                  req: Request) -> None:
        if route.public or verdict.accepted:
            return
        if verdict.name:  # a valid key, from an address its allowlist lacks
            raise Refusal(401, "unauthorized_ip", address=req.client)
        raise Refusal(401, "unauthorized")

    def refusal(self, refusal: Refusal) -> Response:
        return error_response(refusal.status, refusal.text, refusal.headers)

    def refused(self, status: int, error: str) -> Response:
        return error_response(status, ERRORS[error])

    def rate_limited(self, retry_after: int | None) -> Response:
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        return error_response(429, ERRORS["rate_limited"], headers)

    def status_error(self, status: int) -> Response:
        return error_response(status, status_phrase(status) + ".")

    def internal(self) -> Response:
        return error_response(500, ERRORS["internal"])
