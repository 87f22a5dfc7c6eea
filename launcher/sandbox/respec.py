"""The run spec, moved onto a sandbox machine: what must differ from a real instance, and why.

A sandbox machine is a directory on the demo machine, not a VM, so the document's absolute
paths are placed under the machine's host root, the trainer is an account that already
exists here, and "which instance am I" is answered by the sandbox's own metadata server.
Everything else stays as rendered. Each change is a :class:`Rewrite`, written to
``sandbox.json`` next to the rewritten ``run.json`` so nobody mistakes one for the other.

Before any of that, :func:`check_runnable` refuses a spec a sandbox must not run: one that
is not ``health.cpu_only`` (the demo machine has no GPU, and the runner's test-host mode
refuses GPU specs anyway), or one that would reach anything but 127.0.0.1 (the Vultr API,
the bucket, a git remote).
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, replace
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from launcher.runner.boot import BootSpec
from launcher.runner.container import moved_paths
from launcher.runner.spec import RunSpec

CPU_ONLY_REASON = ("the sandbox runs cpu_only documents only (health.cpu_only is false): the "
                   "demo machine has no GPU, and the runner's test-host mode refuses GPU specs")


UPS_WANDB_ON = "logging.wandb.enabled=true"


class SpecRefused(ValueError):
    """The spec must not run in a sandbox; the message says why."""


@dataclass(frozen=True)
class Rewrite:
    """One field of ``run.json`` that differs from the document: from ``document`` to
    ``sandbox``, and ``why``."""

    field: str
    document: object
    sandbox: object
    why: str

    def as_dict(self) -> dict[str, object]:
        return {"field": self.field, "document": self.document, "sandbox": self.sandbox,
                "why": self.why}


def is_loopback_url(url: str) -> bool:
    """``http(s)://`` to 127.0.0.0/8, ``::1`` or ``localhost``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def check_runnable(spec: RunSpec) -> None:
    """Raise :class:`SpecRefused` unless ``spec`` is cpu_only and reaches only loopback."""
    if not spec.health.cpu_only:
        raise SpecRefused(CPU_ONLY_REASON)
    urls = {"api_url": spec.api_url, "storage.endpoint_url": spec.storage.endpoint_url}
    for name, url in urls.items():
        if not is_loopback_url(url):
            raise SpecRefused(f"{name} {url!r} is not on 127.0.0.1: a sandbox reaches "
                              "nothing beyond loopback")
    if spec.code.kind == "git":
        git = spec.code.git_url
        if not (git.startswith("file://") or is_loopback_url(git)):
            raise SpecRefused(f"code.git_url {git!r} is neither file:// nor on 127.0.0.1: a "
                              "sandbox reaches nothing beyond loopback")


def under(host: Path, path: str, field: str) -> str:
    """``path`` (absolute, as on the instance) placed under ``host``."""
    pure = PurePosixPath(path)
    if not pure.is_absolute() or ".." in pure.parts:
        raise SpecRefused(f"{field} {path!r} is not a clean absolute path")
    return str(host / pure.relative_to("/"))


def sandbox_boot(boot: BootSpec, host: Path, *, metadata_url: str
                 ) -> tuple[BootSpec, list[Rewrite]]:
    """``boot.json`` as the sandbox runs it: its files and secrets under ``host``, "which
    instance am I" asked of the sandbox's metadata server. Raises :class:`SpecRefused` when
    the bootstrap would reach beyond loopback."""
    for name in ("endpoint_url", "api_url"):
        url = getattr(boot, name)
        if not is_loopback_url(url):
            raise SpecRefused(f"boot.json {name} {url!r} is not on 127.0.0.1: a sandbox "
                              "reaches nothing beyond loopback")
    files = tuple(replace(pin, path=under(host, pin.path, f"files[{pin.key}].path"))
                  for pin in boot.files)
    changed = replace(boot, files=files, metadata_url=metadata_url,
                      secrets_file=under(host, boot.secrets_file, "secrets_file"))
    where = "a sandbox machine is a directory on the demo machine: instance paths live " \
            "under its host root"
    rewrites = [Rewrite(f"boot.{name}", _plain(_get(boot, name)), _plain(_get(changed, name)),
                        why)
                for name, why in (("files", where), ("secrets_file", where),
                                  ("metadata_url", "the sandbox's metadata server on "
                                   "127.0.0.1 answers instance-v2-id for this machine"))]
    return changed, rewrites


def sandbox_spec(spec: RunSpec, host: Path, *, metadata_url: str,
                 trainer_user: str) -> tuple[RunSpec, list[Rewrite]]:
    """``spec`` as it runs on the sandbox machine whose host root is ``host``, and the
    rewrites that make it so. Raises :class:`SpecRefused` (see :func:`check_runnable`)."""
    check_runnable(spec)
    where = "a sandbox machine is a directory on the demo machine: instance paths live " \
            "under its host root"
    paths = spec.paths
    new_paths = replace(paths, **{name: under(host, getattr(paths, name), f"paths.{name}")
                                  for name in ("state_dir", "log_dir", "code_dir",
                                               "secrets_file")},
                        trainer_user=trainer_user)
    volume = replace(spec.volume, mount_point=under(host, spec.volume.mount_point,
                                                    "volume.mount_point"))
    wandb = replace(spec.wandb, mode="offline" if spec.wandb.mode == "online" else
                    spec.wandb.mode)
    command = sandbox_command(spec.command, spec.volume.mount_point, volume.mount_point)
    changed = replace(spec, paths=new_paths, volume=volume, wandb=wandb,
                      metadata_url=metadata_url, command=command)
    reasons = {
        "paths": where, "volume.mount_point": where + " (a plain directory: nothing is mounted)",
        "paths.trainer_user": "the sandbox creates no accounts: training runs as an existing "
                              "unprivileged user of the demo machine",
        "metadata_url": "the sandbox's metadata server on 127.0.0.1 answers instance-v2-id "
                        "for this machine (169.254.169.254 is the cloud's)",
        "wandb.mode": "no network beyond 127.0.0.1: W&B runs offline",
        "command": "the volume's paths in the command (a UPS stage's overrides) follow the "
                   "mount point; UPS cannot log offline, so its W&B is switched off (no "
                   "network beyond 127.0.0.1), and with it UPS's validate_config.py, which "
                   "refuses W&B off",
    }
    return changed, _diff(spec, changed, reasons)


def sandbox_command(argv: tuple[str, ...], mount: str, moved: str) -> tuple[str, ...]:
    """``argv`` with every path under ``mount`` moved under ``moved``, and UPS's W&B
    (``logging.wandb.enabled=true``, which logs online whatever WANDB_MODE says) off, with
    the config check that refuses it off skipped."""
    changed = list(moved_paths(argv, mount, moved))
    if UPS_WANDB_ON not in changed:
        return tuple(changed)
    changed[changed.index(UPS_WANDB_ON)] = "logging.wandb.enabled=false"
    return (*changed, *(() if "--skip-validation" in changed else ("--skip-validation",)))


def _diff(before: RunSpec, after: RunSpec, reasons: dict[str, str]) -> list[Rewrite]:
    """Every changed field among those :func:`sandbox_spec` may change."""
    fields = [f"paths.{name}" for name in ("state_dir", "log_dir", "code_dir", "secrets_file",
                                           "trainer_user")]
    fields += ["volume.mount_point", "wandb.mode", "metadata_url", "command"]
    rewrites = []
    for name in fields:
        old, new = _get(before, name), _get(after, name)
        if old != new:
            why = reasons.get(name) or reasons[name.split(".")[0]]
            rewrites.append(Rewrite(name, old, new, why))
    return rewrites


def _plain(value: object) -> object:
    """``value`` as JSON can hold it (a tuple of pinned files as a list of dicts)."""
    return [asdict(v) for v in value] if isinstance(value, tuple) else value


def _get(spec: RunSpec | BootSpec, dotted: str) -> object:
    value: object = spec
    for part in dotted.split("."):
        value = getattr(value, part)
    return value
