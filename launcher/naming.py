"""How the launcher names and tags what it creates, in one place.

Everything a run creates can be found again from Vultr alone (no local state): instances
carry tags, and volumes — which Vultr cannot tag — carry labels with the run id.

- Instance: label ``<run_id>``; tags ``launcher``, ``run:<run_id>``, ``stage:<stage>``,
  ``expires:<unix seconds>`` (the watchdog's deadline; ``gc`` treats anything past it as
  ended), ``launch:<nonce>`` (random per ``launcher run`` invocation: how a launch proves an
  instance is its own, not another launcher's of the same run id).
- Volume of one run: label ``<run_id>-cache``. A volume kept for reuse between runs (latent
  caches survive): label ``launcher-cache-<name>``; it belongs to no run and is never garbage.
- The volume ``launcher doctor --prove-self-destruct`` creates and deletes within seconds:
  label ``launcher-probe-<UTC yyyymmdd-hhmmss>-cache``, the volume of a pseudo-run, so that
  ``status``, ``gc`` and ``teardown`` find it should it ever be left behind.
- Bucket: ``<runs_prefix>/<run_id>/`` holds ``status.json``, ``manifest.json``, ``logs/``,
  outputs, and the code bundle ``code.tar.gz``.

A run id is ``<stage>-<UTC yyyymmdd-hhmmss>`` (see ``launcher.render.stage.run_id_for``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from launcher.runner.vultr import run_tag

LAUNCHER_TAG = "launcher"
REUSABLE_VOLUME_PREFIX = "launcher-cache-"
PROBE_PREFIX = "launcher-probe-"

__all__ = ["LAUNCHER_TAG", "PROBE_PREFIX", "RunTags", "instance_tags", "launch_tag", "parse_tags",
           "probe_volume_label", "reusable_volume_label", "run_tag", "volume_label"]


def instance_tags(run_id: str, stage: str, expires_epoch: float) -> tuple[str, ...]:
    return (LAUNCHER_TAG, run_tag(run_id), f"stage:{stage}", f"expires:{int(expires_epoch)}")


def launch_tag(nonce: str) -> str:
    """The tag marking the instances of one launcher invocation (see the module docstring)."""
    return f"launch:{nonce}"


def volume_label(run_id: str) -> str:
    return f"{run_id}-cache"


def probe_volume_label(epoch: float) -> str:
    """The self-destruct probe's volume: the volume label of pseudo-run
    ``launcher-probe-<UTC yyyymmdd-hhmmss>``."""
    return volume_label(PROBE_PREFIX + time.strftime("%Y%m%d-%H%M%S", time.gmtime(epoch)))


def reusable_volume_label(name: str) -> str:
    return f"{REUSABLE_VOLUME_PREFIX}{name}"


@dataclass(frozen=True)
class RunTags:
    """What an instance's tags say; ``run_id`` is "" when it is not the launcher's."""

    run_id: str = ""
    stage: str = ""
    expires_epoch: int | None = None


def parse_tags(tags: tuple[str, ...] | list[str]) -> RunTags:
    """Read :func:`instance_tags` back; unknown tags are ignored, a bad expiry is None."""
    if LAUNCHER_TAG not in tags:
        return RunTags()
    values = dict(t.split(":", 1) for t in tags if ":" in t)
    expires = values.get("expires", "")
    return RunTags(values.get("run", ""), values.get("stage", ""),
                   int(expires) if expires.isdigit() else None)
