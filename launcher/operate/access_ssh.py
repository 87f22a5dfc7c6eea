"""``launcher ssh RUN``: a shell on a run's instance, its SSH host key pinned, never guessed.

The trust chain: the instance's runner reads its own host public keys
(``/etc/ssh/ssh_host_*_key.pub``) and writes them to ``runs/<run-id>/ssh_host_keys.pub`` with
the run's B2 key (:mod:`launcher.runner.hostkeys`). This module reads them back with the
operator's B2 key, writes them to a private known_hosts file for the instance's address and
runs ``ssh`` with ``StrictHostKeyChecking=yes`` against that file alone. Whatever answers at
that address must prove it holds one of those keys. When the keys are not in the bucket, or
were put there before this instance existed, the connection is refused; there is no
trust-on-first-use fallback.

Where ssh connects is the provider's: the instance's address on port 22 (Vultr), or the host
and port its SSH server answers at (a Vast container: the public address and the port mapped
to its port 22, else Vast's SSH proxy by name). The keys are pinned to that host and port
(``[host]:port`` off port 22), so they are never accepted for another.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from launcher.bucket import Bucket
from launcher.cachedir import user_cache_dir
from launcher.errors import ApiError, LauncherError
from launcher.providers import InstanceRef, Provider
from launcher.runner.hostkeys import HOST_KEYS_OBJECT
from launcher.sshkeys import NotAPublicKey, PublicKey, known_hosts, parse_many

USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
CLOCK_SKEW_S = 300.0  # the bucket's clock and Vultr's may disagree this much
MANUAL_CHECK = ("or check the key by hand: open a shell on the instance by the cloud's own "
                "means (Vultr: the console in its portal), run `ssh-keygen -lf "
                "/etc/ssh/ssh_host_ed25519_key.pub` there, and compare it with the "
                "fingerprint ssh shows")
# A host name as ssh is given it: dot-separated labels of letters, digits and inner hyphens.
HOST_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
MAX_HOST_NAME = 253


class SshRefused(LauncherError):
    """No connection is attempted; the message says why and the hint what to do."""


@dataclass(frozen=True)
class SshTarget:
    """The run's instance, where its SSH server answers (``address``: an IP address or a
    host name; ``port``), and the host keys the bucket holds for it."""

    run_id: str
    instance_id: str
    address: str
    keys: tuple[PublicKey, ...]
    port: int = 22

    @property
    def is_name(self) -> bool:
        """Whether ``address`` is a host name rather than an IP address."""
        try:
            ipaddress.ip_address(self.address)
        except ValueError:
            return True
        return False


def find_instance(provider: Provider, run_id: str) -> InstanceRef:
    """The run's one running instance with an address; SshRefused saying what is missing."""
    instances = provider.find_run(run_id).instances
    if not instances:
        raise SshRefused(f"run {run_id} has no instance: it has ended (or was never "
                         "launched), so there is nothing to log in to",
                         hint=f"`launcher status {run_id}` and `launcher logs {run_id}` "
                         "still show what it did")
    if len(instances) > 1:
        ids = ", ".join(i.id for i in instances)
        raise SshRefused(f"run {run_id} has {len(instances)} instances ({ids}); a run has one",
                         hint=f"`launcher teardown {run_id}` removes them")
    instance = instances[0]
    if not instance.running:
        raise SshRefused(f"run {run_id}'s instance {instance.id} is not running ({instance.state})",
                         hint="a new instance takes a few minutes to boot: try again shortly")
    if not (instance.ssh_host or instance.address):
        raise SshRefused(f"run {run_id}'s instance {instance.id} has no address yet",
                         hint="try again in a minute")
    return instance


def read_host_keys(bucket: Bucket, run_id: str,
                   not_before: float | None = None) -> tuple[PublicKey, ...]:
    """The host keys the run's instance published. Refused when they are missing, older than
    ``not_before`` (epoch: the instance's creation) or not keys; ApiError when the bucket
    cannot be read."""
    url = bucket.address.run_url(run_id, HOST_KEYS_OBJECT)
    try:
        found = bucket.stat(url)
        text = bucket.read_text(url) if found is not None else ""
    except ApiError as exc:
        raise ApiError(f"cannot read the run's SSH host keys: {exc.message}; refusing to "
                       "connect without them", hint=MANUAL_CHECK) from None
    if found is None:
        raise SshRefused(f"run {run_id}'s SSH host keys are not in the bucket ({url}) yet: "
                         "refusing to connect without them (trusting whatever answers first "
                         "is what pinning exists to prevent)",
                         hint="the runner publishes them within a minute of boot; wait and "
                         f"try again (`launcher status {run_id}` has a note if it could not), "
                         + MANUAL_CHECK)
    if not_before is not None and found.modified is not None \
            and found.modified < not_before - CLOCK_SKEW_S:
        raise SshRefused(f"{url} predates run {run_id}'s instance: an earlier instance of "
                         "the run published it, not this one; refusing to connect",
                         hint="wait a minute for the new instance to publish its keys, "
                         + MANUAL_CHECK)
    try:
        keys = parse_many(text)
    except NotAPublicKey as exc:
        raise SshRefused(f"{url} holds no usable host key ({exc}); refusing to connect",
                         hint=MANUAL_CHECK) from None
    if not keys:
        raise SshRefused(f"{url} is empty; refusing to connect", hint=MANUAL_CHECK)
    return keys


def target_for(provider: Provider, bucket: Bucket, run_id: str) -> SshTarget:
    """Instance first (no instance: no reason to ask the bucket), then its host keys."""
    if not provider.capabilities.ssh_host_keys:
        raise SshRefused(f"{provider.title} machines publish no SSH host key the launcher "
                         "could pin, and it never connects to a host it cannot verify",
                         hint=f"`launcher logs {run_id} --follow` shows the run; the cloud's "
                         "own console offers a shell")
    instance = find_instance(provider, run_id)
    host, port = ssh_endpoint(instance)
    keys = read_host_keys(bucket, run_id, instance.created_epoch)
    return SshTarget(run_id, instance.id, host, keys, port)


def ssh_endpoint(instance: InstanceRef) -> tuple[str, int]:
    """Where the instance's SSH server answers: ``ssh_host`` (else its address) and
    ``ssh_port``, both checked strictly, since they become ssh's arguments and the pinned
    file's host. SshRefused naming what is wrong."""
    raw = instance.ssh_host or instance.address
    port = instance.ssh_port
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise SshRefused(f"instance {instance.id}'s SSH port {port!r} is not a TCP port; "
                         "refusing to connect")
    try:
        return str(ipaddress.ip_address(raw)), port
    except ValueError:
        pass
    if len(raw) <= MAX_HOST_NAME and all(HOST_LABEL.match(label) for label in raw.split(".")) \
            and not raw.replace(".", "").isdigit():
        return raw.lower(), port
    raise SshRefused(f"instance {instance.id}'s SSH host {raw!r} is neither an IP address nor "
                     "a host name (letters, digits, dots, hyphens); refusing to connect")


def known_hosts_path(run_id: str, environ: Mapping[str, str]) -> Path:
    """``$XDG_CACHE_HOME/launcher/known_hosts/<run-id>`` (``~/.cache`` by default)."""
    return user_cache_dir(environ) / "known_hosts" / run_id


def write_known_hosts(path: Path, target: SshTarget) -> Path:
    """Replace ``path`` with the target's pinned keys: mode 0600, its folder 0700."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    staged = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(known_hosts(target.address, target.keys, target.port))
    os.replace(staged, path)
    return path


def ssh_argv(ssh: str, user: str, target: SshTarget, known: Path,
             identity: tuple[str, ...] = (), extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """``ssh`` checking the host against ``known`` alone (``-p`` off port 22), then
    ``user@address`` and ``extra`` (ssh accepts options after the destination; the first
    value of an option wins, so ``extra`` cannot loosen the checks)."""
    if not USER.match(user):
        raise SshRefused(f"--user {user!r}: expected a login name such as root")
    pinned = str(known).replace("%", "%%")  # ssh expands %-tokens in this option
    if any(c.isspace() for c in pinned):
        pinned = f'"{pinned}"'
    port = ("-p", str(target.port)) if target.port != 22 else ()
    # A name is pinned as a name: its addresses are not checked against the file, nor added.
    by_name = ("-o", "CheckHostIP=no") if target.is_name else ()
    return (ssh, "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={pinned}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "UpdateHostKeys=no", *by_name,
            *port, *identity, f"{user}@{target.address}", *extra)


def identity_options(public_key: str) -> tuple[str, ...]:
    """``-i <private key> -o IdentitiesOnly=yes`` for the configured public key when its
    private half sits next to it (``id.pub`` -> ``id``); else nothing (ssh's defaults)."""
    if not public_key.endswith(".pub"):
        return ()
    private = Path(public_key[: -len(".pub")]).expanduser()
    return ("-i", str(private), "-o", "IdentitiesOnly=yes") if private.is_file() else ()
