"""The emulator's request and response values, independent of the HTTP server."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from launcher.emulator.errors import Refusal


@dataclass(frozen=True)
class Request:
    """One request: ``path`` still has its ``/v2`` prefix; ``body_error`` names an ERRORS key
    when the server could not read the body (too large)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    client: str
    body_error: str | None = None

    def header(self, name: str) -> str:
        """The value of header ``name`` (any case), or ""."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), "")

    def arg(self, name: str) -> str | None:
        """The first value of query parameter ``name``, or None."""
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> dict:
        """The body as a JSON object; an empty body is ``{}``; anything else is a 400."""
        if self.body_error:
            raise Refusal(400, self.body_error)
        if not self.body.strip():
            return {}
        try:
            value = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Refusal(400, "bad_json") from exc
        if not isinstance(value, dict):
            raise Refusal(400, "bad_json")
        return value


@dataclass
class Response:
    """A handler's answer: a JSON body (or None for 204) plus extra headers."""

    status: int
    body: dict | None = None
    headers: dict[str, str] = field(default_factory=dict)
    note: str | None = None

    def encode(self) -> tuple[dict[str, str], bytes]:
        """Headers and bytes as sent on the wire."""
        data = b"" if self.body is None else json.dumps(self.body).encode()
        headers = {"Content-Type": "application/json"} if self.body is not None else {}
        headers.update(self.headers)
        headers["Content-Length"] = str(len(data))
        return headers, data


def error_response(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    """Vultr's error envelope."""
    return Response(status, {"error": text, "status": status}, dict(headers or {}))


def field_value(body: dict, name: str, kind: type, *, required: bool = False,
                default: object = None) -> object:
    """``body[name]`` checked against a JSON type (int excludes bool); missing → ``default``."""
    if body.get(name) is None:
        if required:
            raise Refusal(400, "missing_field", field=name)
        return default
    value = body[name]
    wrong_int = kind is int and isinstance(value, bool)
    if wrong_int or not isinstance(value, kind):
        raise Refusal(400, "bad_field", field=name)
    if kind is list and not all(isinstance(item, str) for item in value):
        raise Refusal(400, "bad_field", field=name)
    return value
