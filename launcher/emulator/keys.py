"""The emulator's API keys: which bearer tokens it accepts, and from which addresses.

Vultr lets each (sub-)user's key be limited to a list of source addresses (Account > API >
Access Control); a valid key used from another address is refused with 401 and
``Unauthorized IP address: <address>`` (docs/emulator.md, "Wording"). The emulator's main
key allows every address; :meth:`Keyring.add` adds more, each with a name (events record the
name, never the key) and optionally an allowlist.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field

MAIN_KEY = "main"


@dataclass(frozen=True)
class ApiKey:
    """One accepted key. ``allowed`` None: any address ("allow all")."""

    name: str
    secret: bytes = field(repr=False)
    allowed: frozenset[str] | None = None


@dataclass(frozen=True)
class Verdict:
    """What a request's ``Authorization`` header is worth: the key's name when it is one
    of ours (else ""), and whether it may be used from the request's address."""

    name: str = ""
    address_ok: bool = False

    @property
    def accepted(self) -> bool:
        return bool(self.name) and self.address_ok


class Keyring:
    """The keys an emulator accepts; compared in constant time, every key every time."""

    def __init__(self, main: str) -> None:
        self._keys: list[ApiKey] = [ApiKey(MAIN_KEY, main.encode("utf-8"))]

    def __repr__(self) -> str:
        return f"Keyring({', '.join(k.name for k in self._keys)})"

    def add(self, key: str, name: str, allowed_ips: Iterable[str] | None = None) -> None:
        if not key or not name:
            raise ValueError("an emulator key needs a non-empty key and name")
        if any(k.name == name for k in self._keys):
            raise ValueError(f"the emulator already has a key named {name!r}")
        allowed = None if allowed_ips is None else frozenset(allowed_ips)
        self._keys.append(ApiKey(name, key.encode("utf-8"), allowed))

    def remove(self, name: str) -> None:
        """Stop accepting the key named ``name`` (never the main key); unknown names are fine."""
        if name == MAIN_KEY:
            raise ValueError("the emulator's main key cannot be removed")
        self._keys = [k for k in self._keys if k.name != name]

    def judge(self, header: str, address: str) -> Verdict:
        """The verdict on ``Authorization: <header>`` sent from ``address``."""
        scheme, _, token = header.partition(" ")
        raw = token.strip().encode("utf-8", "replace")
        matches = [k for k in self._keys if hmac.compare_digest(raw, k.secret)]
        if not matches or scheme.lower() != "bearer":
            return Verdict()
        key = matches[0]
        return Verdict(key.name, key.allowed is None or address in key.allowed)
