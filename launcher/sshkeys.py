"""OpenSSH public keys as data: parsed, checked, fingerprinted, named, written as known_hosts.

A public key line is ``<type> <base64 blob> [comment]``. The blob itself starts with the type
(an SSH ``string``: 4-byte big-endian length, then the name), which is checked, so a pasted
fragment or a private key never passes for a key. The fingerprint is OpenSSH's
``SHA256:<base64 of sha256(blob), unpadded>`` (what ``ssh-keygen -lf`` prints).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

KEY_TYPES = ("ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-")
ACCOUNT_KEY_PREFIX = "launcher-"
NAME_FINGERPRINT_CHARS = 16
MAX_KEY_FILE_BYTES = 64 * 1024  # a public key file: a few keys of under 1 KB each
HOST = re.compile(r"^[0-9A-Za-z.:\-]+$")  # an IP address or a host name, unbracketed


class NotAPublicKey(ValueError):
    """Not an OpenSSH public key; the message says why (never the text itself)."""


@dataclass(frozen=True)
class PublicKey:
    """One public key: ``kind`` (``ssh-ed25519``…), ``blob`` (base64, as written) and the
    comment (ignored when keys are compared)."""

    kind: str
    blob: str
    comment: str = ""

    @classmethod
    def parse(cls, line: str) -> PublicKey:
        """One ``<type> <base64> [comment]`` line; :class:`NotAPublicKey` when it is not one."""
        parts = line.strip().split(maxsplit=2)
        if len(parts) < 2 or not parts[0].startswith(KEY_TYPES):
            raise NotAPublicKey("expected '<type> <base64> [comment]' with a type like ssh-ed25519")
        try:
            raw = base64.b64decode(parts[1], validate=True)
        except (binascii.Error, ValueError):
            raise NotAPublicKey(f"the {parts[0]} key's body is not base64") from None
        if _embedded_type(raw) != parts[0]:
            raise NotAPublicKey(f"the key's body does not hold a {parts[0]} key")
        return cls(parts[0], parts[1], parts[2] if len(parts) > 2 else "")

    @property
    def body(self) -> tuple[str, str]:
        """What identifies the key: type and blob, the comment left out."""
        return self.kind, self.blob

    @property
    def line(self) -> str:
        """``<type> <base64>``: the key without its comment."""
        return f"{self.kind} {self.blob}"

    @property
    def fingerprint(self) -> str:
        """``SHA256:…`` as ``ssh-keygen -lf`` prints it."""
        digest = hashlib.sha256(base64.b64decode(self.blob)).digest()
        return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")

    @property
    def account_name(self) -> str:
        """The name the launcher registers it under: ``launcher-`` and the first 16
        characters of the fingerprint, URL-safe (``+`` -> ``-``, ``/`` -> ``_``)."""
        short = self.fingerprint.removeprefix("SHA256:")[:NAME_FINGERPRINT_CHARS]
        return ACCOUNT_KEY_PREFIX + short.replace("+", "-").replace("/", "_")


def _embedded_type(raw: bytes) -> str:
    if len(raw) < 4:
        return ""
    size = int.from_bytes(raw[:4], "big")
    return raw[4:4 + size].decode("ascii", errors="replace") if size <= len(raw) - 4 else ""


def body_of(text: str) -> tuple[str, ...]:
    """``(type, base64)`` of a key as written, unchecked (for comparing account keys)."""
    return tuple(text.split()[:2])


def parse_many(text: str) -> tuple[PublicKey, ...]:
    """Every key of a ``.pub``-style text (blank lines and ``#`` comments skipped); raises
    :class:`NotAPublicKey` naming the first line that is not a key."""
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            try:
                keys.append(PublicKey.parse(line))
            except NotAPublicKey as exc:
                raise NotAPublicKey(f"line {number}: {exc}") from None
    return tuple(keys)


def known_hosts(host: str, keys: tuple[PublicKey, ...], port: int = 22) -> str:
    """A known_hosts text pinning ``keys`` to ``host`` (an address or a host name), one line
    per key. On another port than 22 the host is written ``[host]:port``, as sshd(8)'s
    SSH_KNOWN_HOSTS FILE FORMAT has it (a bare name would match port 22 only)."""
    if not HOST.match(host):
        raise ValueError(f"not a host address: {host!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"not a TCP port: {port!r}")
    name = host if port == 22 else f"[{host}]:{port}"
    return "".join(f"{name} {key.line}\n" for key in keys)
