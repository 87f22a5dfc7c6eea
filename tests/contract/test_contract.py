"""The contract checker itself: it can fail, its errata are still true, and it covers every
route the emulator serves; the vendored document matches its provenance record and its errata
list. The document is part of the repository, so these never skip: without it the module
fails to load, naming the missing path (see :mod:`support.contract`)."""

from __future__ import annotations

import hashlib
import json
import re
from types import SimpleNamespace

import pytest
from support.contract import DEFAULT_SPEC, ContractChecker, spec_path
from support.errata import ERRATA

from launcher.emulator.routes import ROUTES

# Its own checker, so the deliberate violations here stay out of the suite's tally.
checker = ContractChecker(spec_path())

CLIENT = {"User-Agent": "launcher/test", "Authorization": "Bearer <redacted>"}


def exchange(method, path, status, body, *, query=None, request=b"", headers=CLIENT):
    return SimpleNamespace(
        method=method, path=path, query=query or {}, request_headers=dict(headers),
        request_body=request, status=status, response_headers={},
        response_body=json.dumps(body).encode() if body is not None else b"")


def test_every_emulator_route_is_an_operation_of_the_document():
    paths = checker.document["paths"]
    templates = {_shape(p): p for p in paths}
    missing = []
    for route in ROUTES:
        doc_path = templates.get(_shape("/" + route.key.split(" /", 1)[1]))
        if doc_path is None or route.method.lower() not in paths[doc_path]:
            missing.append(route.key)
    assert missing == []


def _shape(path: str) -> str:
    return "/".join("{}" if s.startswith("{") else s for s in path.split("/"))


@pytest.mark.parametrize(("case", "expected"), [
    (exchange("GET", "/v2/plans", 200, {"plans": [{"id": "p", "vcpu_count": "8"}]}),
     "is not of type 'integer'"),
    (exchange("GET", "/v2/plans", 200, {"plans": [{"id": "p", "gpu_vram_gb": 4.5}]}),
     "gpu_vram_gb must be an integer"),
    (exchange("GET", "/v2/plans-metal", 200, {"plans": []}), "plans_metal"),
    (exchange("GET", "/v2/account", 500, {"message": "oops"}), "lacks a string `error`"),
    (exchange("GET", "/v2/account", 404, {"error": "x", "status": 400}), "!= HTTP 404"),
    (exchange("POST", "/v2/blocks", 202, {"block": {"id": "b"}},
              request=json.dumps({"size_gb": 10}).encode()), "'region' is a required"),
    (exchange("GET", "/v2/account", 200, {"account": {}}, headers={"User-Agent": "launcher/t"}),
     "Security"),
    (exchange("GET", "/v2/no-such-thing", 200, {}), "PathNotFound"),
    (exchange("DELETE", "/v2/blocks/b", 204, {"unexpected": True}), "204 with a body"),
])
def test_the_checker_catches_what_breaks_the_contract(case, expected):
    problems = checker.check(case)
    assert any(expected in p for p in problems), problems


def test_a_conforming_exchange_passes():
    body = {"plans": [{"id": "vcg-x", "vcpu_count": 8, "gpu_vram_gb": 40, "gpu_type": "A100"}],
            "meta": {"total": 1, "links": {"next": "", "prev": ""}}}
    assert checker.check(exchange("GET", "/v2/plans", 200, body, query={"type": ["vcg"]})) == []


def test_hand_made_requests_are_not_held_to_the_contract_but_their_answers_are():
    bad = exchange("POST", "/v2/blocks", 400, {"error": "Invalid size_gb.", "status": 400},
                   request=b"{}", headers={"User-Agent": "python-requests"})
    assert checker.check(bad) == []


def test_the_errata_still_hold():
    """If Vultr fixes its document, an erratum becomes stale: these fail and say which."""
    doc = checker.document
    metal = doc["paths"]["/plans-metal"]["get"]["responses"]["200"]["content"]
    assert "plans_metal" not in metal["application/json"]["schema"]["properties"]
    plan_fields = doc["components"]["schemas"]["plans"]["properties"]
    assert "gpu_vram_gb" not in plan_fields and "gpu_type" not in plan_fields
    account = doc["paths"]["/account"]["get"]["responses"]
    assert "429" not in account and "500" not in account
    assert len({e.where for e in ERRATA}) == len(ERRATA)


def test_the_vendored_document_is_the_one_its_provenance_records():
    """PROVENANCE.md's sha256 is the file's: a refreshed document needs a refreshed record."""
    recorded = re.findall(r"\| sha256 \| `([0-9a-f]{64})` \|",
                          (DEFAULT_SPEC.parent / "PROVENANCE.md").read_text(encoding="utf-8"))
    assert recorded == [hashlib.sha256(DEFAULT_SPEC.read_bytes()).hexdigest()]


def test_errata_md_names_exactly_the_errata_of_errata_py():
    """support/errata.py is the single source; ERRATA.md beside the document lists it."""
    text = (DEFAULT_SPEC.parent / "ERRATA.md").read_text(encoding="utf-8")
    listed = re.findall(r"^- `([^`]+)`:", text, flags=re.MULTILINE)
    assert sorted(listed) == sorted(e.where for e in ERRATA)
