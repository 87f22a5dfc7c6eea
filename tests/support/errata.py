"""Known errata of Vultr's OpenAPI document, in one place, each with its reason.

The contract checker validates every request the API layer sends and every response the
emulator returns against ``tests/data/vultr/openapi.json``. Where that document is known to
disagree with the live API (as observed by Vultr's own clients), the checker follows the live
API, and the disagreement is listed here rather than scattered through the tests.

This module is the single source. ``tests/data/vultr/ERRATA.md``, beside the document, names
each erratum by its ``where`` in one line; a contract test fails unless it names exactly these.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Erratum:
    where: str
    what: str
    reason: str


ERRATA: tuple[Erratum, ...] = (
    Erratum(
        where="whole document",
        what="the document fails OpenAPI 3.0 meta-validation (e.g. `properties: null` under "
        "/cdns/pull-zones/{pullzone-id}/purge), so it is loaded without the spec validator",
        reason="the paths this project uses are well-formed; the broken ones are unrelated",
    ),
    Erratum(
        where="GET /plans-metal",
        what="the list key is `plans_metal`, not `plans` as the document says",
        reason="the live API and Vultr's Go client (govultr) use `plans_metal`; the checker "
        "requires `plans_metal` and validates its items against `plans-metal`",
    ),
    Erratum(
        where="plans (GET /plans?type=vcg, GET /plans-metal)",
        what="`gpu_vram_gb` (integer) and `gpu_type` (string) are returned but undocumented",
        reason="Vultr returns them for GPU plans; the schemas allow extra fields, so they pass, "
        "and the checker also checks their types",
    ),
    Erratum(
        where="every operation",
        what="error statuses are documented without a body, and 429/5xx not at all",
        reason="Vultr answers errors with `{\"error\": str, \"status\": int}`, 429 when a client "
        "exceeds 30 requests/s, and 5xx on outages; the checker accepts any 4xx/5xx status and "
        "requires that envelope instead of a documented body",
    ),
)
