"""Quick looks before anything is uploaded or created: the bucket's endpoint, and the key
the instance will delete itself with.

The instance's Vultr key (``VULTR_SELF_DESTRUCT_KEY``, else ``VULTR_KEY``) is only used at
the end of a run, by the instance; a key that is wrong, expired or limited to other
addresses would leave that run's volume and instance billing. :func:`prove_instance_key`
reads with it what the instance's teardown reads (one item of ``/blocks`` and of
``/instances``): two GETs, and a refusal stops the launch before anything exists. A read
cannot prove that the key may detach and delete, nor that its allowlist admits the
instance's future address (``launcher doctor --prove-self-destruct`` goes further).

s5cmd retries a refused connection for more than a minute per attempt, so a wrong endpoint
would keep a launch waiting for minutes before saying so. One TCP connection with a short
timeout tells a person at once. (It proves the port answers, not the key: the upload that
follows does that, still before any Vultr create.)
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from launcher.config import Account, instance_secret_sources
from launcher.errors import ApiError, AuthError, ConfigError
from launcher.providers import Provider
from launcher.providers.vultr import VultrProvider
from launcher.provision.model import PlannedCall
from launcher.vultr import VultrClient

CONNECT_TIMEOUT_S = 10.0
# What the instance's teardown reads with its key (launcher/runner/vultr.py), one item each.
READ_PROOF_PATHS = ("/blocks", "/instances")
KEY_CAUSES = ("wrong, expired, or limited by its API access control to addresses that do "
              "not include this one")
KEY_FIX = ("give the self-destruct user's key access control 'allow all' "
           "(docs/security.md), fix or replace it, then `launcher doctor`")


@dataclass(frozen=True)
class KeyProof:
    """A read proof that passed: which variable the instance's key came from, whether it is
    the dedicated self-destruct key, and the calls made with it."""

    variable: str
    dedicated: bool
    reads: tuple[str, ...]


class InstanceKeyError(ConfigError):
    """The key the instance will hold was refused (401/403); carries the variable's name and
    the status, never the key."""

    def __init__(self, message: str, *, variable: str, status: int | None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.variable = variable
        self.status = status


def instance_key_variable(account: Account) -> str:
    """``VULTR_SELF_DESTRUCT_KEY`` when it is set, else ``VULTR_KEY``."""
    return instance_secret_sources(account)["VULTR_KEY"]


def read_proof_calls(account: Account, provider: Provider) -> tuple[PlannedCall, ...]:
    """The proof's calls as a dry run lists them (it makes none of them); none where
    :func:`prove_before_launch` proves nothing."""
    if not isinstance(provider, VultrProvider):
        return ()
    note = (f"with {instance_key_variable(account)}, the key the instance deletes itself "
            "with: a refusal stops the launch before anything is created; not called in a "
            "dry run")
    return tuple(PlannedCall("GET", f"{path}?per_page=1", None, note)
                 for path in READ_PROOF_PATHS)


def prove_instance_key(account: Account, client: VultrClient) -> KeyProof:
    """Read with the instance's key what its teardown reads; InstanceKeyError (one line: the
    variable, the status, the likely causes, what to do) when Vultr refuses it."""
    variable = instance_key_variable(account)
    if not account.instance_vultr_key:
        raise ConfigError(f"{variable} is not set: the instance could not delete itself")
    reads = []
    with client.with_key(account.instance_vultr_key, variable) as keyed:
        for path in READ_PROOF_PATHS:
            try:
                keyed.http.request("GET", path, params={"per_page": 1})
            except AuthError as exc:
                raise key_refused(variable, exc) from None
            reads.append(f"GET {path}?per_page=1")
    return KeyProof(variable, bool(account.vultr_self_destruct_key), tuple(reads))


def prove_before_launch(account: Account, provider: Provider) -> KeyProof | None:
    """:func:`prove_instance_key` on Vultr, its refusal saying that nothing was launched.
    None elsewhere: a cloud whose machines get their own key at create (Vast's per-instance
    key) has no key of the operator's to prove."""
    if not isinstance(provider, VultrProvider):
        return None
    try:
        return prove_instance_key(account, provider.client)
    except InstanceKeyError as exc:
        raise InstanceKeyError(f"not launched, nothing was created: {exc.message}",
                               variable=exc.variable, status=exc.status) from None


def key_refused(variable: str, exc: ApiError) -> InstanceKeyError:
    """The one-line error for the instance's key refused by ``exc`` (a 401/403)."""
    return InstanceKeyError(
        f"{variable}, the key the instance deletes its volume and itself with, was refused "
        f"({exc.method} {exc.path}: HTTP {exc.status}, {exc.api_message}): it is {KEY_CAUSES}; "
        f"{KEY_FIX}", variable=variable, status=exc.status)


def check_reachable(endpoint_url: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Raise ApiError (one line, naming the endpoint) when nothing answers there."""
    parts = urlsplit(endpoint_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"storage.endpoint_url {endpoint_url!r}: expected an http(s) URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ConfigError(f"storage.endpoint_url {endpoint_url!r}: bad port") from None
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            return
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
    raise ApiError(f"bucket: cannot reach {endpoint_url} ({reason}); nothing was created",
                   hint="check B2_S3_ENDPOINT (or storage.endpoint_url) and the network")
