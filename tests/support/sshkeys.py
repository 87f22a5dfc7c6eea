"""Well-formed OpenSSH public keys for tests (random bytes in the right shape: no private
key exists for them, and none is needed)."""

from __future__ import annotations

import base64
import hashlib


def _string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def ed25519_public(seed: str, comment: str = "me@laptop") -> str:
    """``ssh-ed25519 <base64> <comment>`` whose 32 key bytes derive from ``seed``."""
    blob = _string(b"ssh-ed25519") + _string(hashlib.sha256(seed.encode()).digest())
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}".strip()
