"""Checks HTTP exchanges against Vultr's OpenAPI document.

Used by the emulator fixture: every response the emulator sends, and every request that the
project's API layer sends (recognised by its ``launcher/`` user agent), is validated. Requests
that tests hand-craft to provoke refusals are not expected to be valid, so only their responses
are checked. The document's known errata are applied as listed in :mod:`support.errata`.

The document is part of the repository (``tests/data/vultr/openapi.json``, with its provenance
beside it), so it is never optional: a missing document is an error in every test that
checks traffic against it (any test that starts an emulator or uses the stub server, and the
contract tests themselves), not a skip. A skip would let a broken checkout pass with the
contract unchecked; ``support.need`` (skip, fail only under CI) is for prerequisites outside
the repository, and this is not one. ``LAUNCHER_OPENAPI`` points the tests at another copy
(for instance a newer one being tried out); it must exist too.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator

HOST = "https://api.vultr.com"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SPEC = REPO_ROOT / "tests" / "data" / "vultr" / "openapi.json"
CLIENT_AGENT = "launcher/"


def spec_path() -> Path:
    """Where the OpenAPI document is read from: the vendored copy, or ``LAUNCHER_OPENAPI``."""
    return Path(os.environ.get("LAUNCHER_OPENAPI", DEFAULT_SPEC))


class MissingDocument(FileNotFoundError):
    """The OpenAPI document is not where the tests read it from."""


def _read_document(path: Path) -> dict:
    if not path.is_file():
        where = ("LAUNCHER_OPENAPI names" if "LAUNCHER_OPENAPI" in os.environ
                 else "the repository's copy is")
        raise MissingDocument(
            f"Vultr's OpenAPI document is missing: {where} {path}. It is part of the "
            "repository (tests/data/vultr/openapi.json, see PROVENANCE.md there): restore it, "
            "or point LAUNCHER_OPENAPI at a copy.")
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass
class Tally:
    requests: int = 0
    responses: int = 0
    violations: list[str] = field(default_factory=list)


class ContractChecker:
    """Validates exchanges; thread-safe because the emulator serves from several threads."""

    def __init__(self, path: Path) -> None:
        self.document = _read_document(path)
        # Erratum "whole document": the file fails meta-validation in paths we never use.
        self.api = OpenAPI.from_dict(self.document, config=Config(spec_validator_cls=None))
        schemas = self.document["components"]["schemas"]
        self._metal_plan = OAS30Validator(schemas["plans-metal"])
        self._lock = threading.Lock()
        self.tally = Tally()

    def check(self, exchange) -> list[str]:
        """Return the contract violations of one exchange (an empty list when it conforms)."""
        request = self._mock_request(exchange)
        problems: list[str] = []
        agent = _header(exchange.request_headers, "user-agent") or ""
        from_client = agent.startswith(CLIENT_AGENT)
        if from_client:
            problems += self._request_problems(request)
        problems += self._response_problems(request, exchange)
        where = f"{exchange.method} {exchange.path} -> {exchange.status}"
        problems = [f"{where}: {p}" for p in problems]
        with self._lock:
            self.tally.requests += int(from_client)
            self.tally.responses += 1
            self.tally.violations += problems
        return problems

    def check_request(self, method: str, path: str, query: dict, headers: dict,
                      body: bytes) -> list[str] | None:
        """Validate one request the API layer sent to a stand-in server (not the emulator).

        Returns None when the document has no such path: the unit tests' stub server also
        serves made-up routes, which no contract covers.
        """
        exchange = _RequestOnly(method, path, query, headers, body)
        result = self.api.unmarshal_request(self._mock_request(exchange))
        if any(type(e).__name__ == "PathNotFound" for e in result.errors):
            return None
        problems = [f"{method} {path}: request: {_describe(e)}" for e in result.errors]
        with self._lock:
            self.tally.requests += 1
            self.tally.violations += problems
        return problems

    def _mock_request(self, exchange) -> MockRequest:
        query = {k: v[-1] if isinstance(v, list) else v for k, v in exchange.query.items()}
        headers = dict(exchange.request_headers)
        body = exchange.request_body or None
        return MockRequest(
            HOST,
            exchange.method.lower(),
            exchange.path,
            args=query,
            headers=headers,
            data=body,
            content_type=_header(headers, "content-type") or "application/json",
        )

    def _request_problems(self, request: MockRequest) -> list[str]:
        result = self.api.unmarshal_request(request)
        return [f"request: {_describe(e)}" for e in result.errors]

    def _response_problems(self, request: MockRequest, exchange) -> list[str]:
        body = exchange.response_body or b""
        if exchange.status >= 400:
            return _envelope_problems(exchange.status, body)
        if exchange.status == 204:
            return [] if not body else ["204 with a body"]
        response = MockResponse(body, status_code=exchange.status, content_type="application/json")
        problems = [f"response: {_describe(e)}" for e in
                    self.api.unmarshal_response(request, response).errors]
        return problems + self._errata_checks(exchange.path, json.loads(body or b"null"))

    def _errata_checks(self, path: str, data: object) -> list[str]:
        problems = []
        if path.endswith("/plans-metal"):
            if not isinstance(data, dict) or "plans_metal" not in data:
                return ["erratum: /plans-metal must list under `plans_metal`"]
            for plan in data["plans_metal"]:
                problems += [f"plans_metal item: {e.message}"
                             for e in self._metal_plan.iter_errors(plan)]
        if isinstance(data, dict):
            for plan in data.get("plans", []) + data.get("plans_metal", []):
                problems += _gpu_field_problems(plan)
        return problems


@dataclass(frozen=True)
class _RequestOnly:
    method: str
    path: str
    query: dict
    request_headers: dict
    request_body: bytes


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _gpu_field_problems(plan: dict) -> list[str]:
    problems = []
    if "gpu_vram_gb" in plan and not isinstance(plan["gpu_vram_gb"], int):
        problems.append(f"plan {plan.get('id')}: gpu_vram_gb must be an integer")
    if "gpu_type" in plan and not isinstance(plan["gpu_type"], str):
        problems.append(f"plan {plan.get('id')}: gpu_type must be a string")
    return problems


def _envelope_problems(status: int, body: bytes) -> list[str]:
    """Vultr's error envelope: ``{"error": str, "status": int}`` matching the HTTP status."""
    try:
        data = json.loads(body)
    except ValueError:
        return ["error response is not JSON"]
    if not isinstance(data, dict) or not isinstance(data.get("error"), str):
        return ["error response lacks a string `error`"]
    if data.get("status") != status:
        return [f"error envelope status {data.get('status')!r} != HTTP {status}"]
    return []


def _describe(error: Exception) -> str:
    """The exception's kind plus its schema messages (openapi-core nests them in a cause)."""
    messages = []
    for err in (error, error.__cause__):
        messages += [getattr(e, "message", str(e)) for e in getattr(err, "schema_errors", ()) or ()]
    return f"{type(error).__name__}: " + ("; ".join(messages) if messages else str(error))


_CHECKER: list[ContractChecker] = []


def contract_checker() -> ContractChecker:
    """The suite's one checker, loaded on first use; raises :class:`MissingDocument` (every
    time it is asked, so every test that needs it errors) when the document is absent."""
    if not _CHECKER:
        _CHECKER.append(ContractChecker(spec_path()))
    return _CHECKER[0]


def loaded_checker() -> ContractChecker | None:
    """The checker if one was loaded during this run (for the summary), else None."""
    return _CHECKER[0] if _CHECKER else None
