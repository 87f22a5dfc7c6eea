"""The SSH key a launch installs (``access.ssh_public_key``): planned read-only, registered by
the reconcile.

Planning reads the key file and the account's keys: a key with the same body (type and
base64; the comment and the name do not matter) is reused, whatever it is called. Otherwise
the reconcile registers it once, before the first instance create, under
``launcher-<first 16 characters of its SHA256 fingerprint>`` (:mod:`launcher.sshkeys`), so a
second launch, from any machine, finds it again. An SSH key belongs to the account, not to a
run: rollback, teardown and gc never delete it.
"""

from __future__ import annotations

from pathlib import Path

from launcher.config import StageConfig
from launcher.errors import ConfigError
from launcher.localfiles import read_text
from launcher.providers import Provider
from launcher.provision.deps import Progress
from launcher.provision.model import SshKeyPlan
from launcher.sshkeys import MAX_KEY_FILE_BYTES, NotAPublicKey, PublicKey, body_of

ACCOUNT_LEVEL = ("an account key, not a run resource: rollback, teardown and gc leave it; "
                 "delete it under Account > SSH Keys when no longer wanted")


def plan_ssh_key(provider: Provider, stage: StageConfig) -> SshKeyPlan | None:
    """The stage's key and whether the account has it already (read-only; None: no key)."""
    path = stage.access.ssh_public_key
    if not path:
        return None
    key = read_public_key(path)
    same = [k for k in provider.list_ssh_keys() if body_of(k.public_key) == key.body]
    named = [k for k in same if k.name == key.account_name]
    found = (named or same)[0].id if same else None
    return SshKeyPlan(path, f"{key.line} {key.comment}".strip(), key.account_name,
                      key.fingerprint, found)


def read_public_key(path: str) -> PublicKey:
    """The first key of the file; ConfigError naming the file when it is not one."""
    where = f"access.ssh_public_key {path}"
    try:
        text = read_text(Path(path).expanduser(), expected="an OpenSSH public key file",
                         limit=MAX_KEY_FILE_BYTES)
    except ConfigError as exc:  # its message starts with the path
        raise ConfigError(f"access.ssh_public_key {exc.message}") from None
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        return PublicKey.parse(lines[0] if lines else "")
    except NotAPublicKey as exc:
        raise ConfigError(f"{where}: {exc}") from None


def ensure_ssh_key(planned: SshKeyPlan | None, provider: Provider, say: Progress,
                   created: list[str], reused: list[str], kept: list[str]) -> tuple[str, ...]:
    """The key ids to give the instance: the account's key, or the one registered now (once
    per launch: call it before the first instance create)."""
    if planned is None:
        return ()
    if not planned.must_register:
        reused.append(f"SSH key {planned.key_id} ({planned.fingerprint})")
        return (str(planned.key_id),)
    key_id = provider.register_ssh_key(planned.name, planned.public_key)
    created.append(f"SSH key {key_id} ({planned.name})")
    say.note(f"registered SSH key {planned.name} ({planned.fingerprint}) as {key_id}: "
             f"{ACCOUNT_LEVEL}")
    kept.append(f"SSH key {planned.name} ({key_id}) stays in the account: {ACCOUNT_LEVEL}")
    return (key_id,)
