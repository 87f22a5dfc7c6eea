"""How the launcher names and tags what it creates, in one place.

Everything a run creates can be found again from Vultr alone (no local state): instances
carry tags, and volumes — which Vultr cannot tag — carry labels with the run id.

- Instance: label ``<run_id>``; tags ``launcher``, ``run:<run_id>``, ``stage:<stage>``,
  ``expires:<unix seconds>`` (the watchdog's deadline; ``gc`` treats anything past it as
  ended), ``launch:<nonce>`` (random per ``launcher run`` invocation: how a launch proves an
  instance is its own, not another launcher's of the same run id). Node k of an N-node run:
  label ``<run_id>-node<k>`` and one more tag, ``node:<k>``.
- Volume of one run: label ``<run_id>-cache``; node k's of an N-node run
  ``<run_id>-node<k>-cache``. A volume kept for reuse between runs (latent
  caches survive): label ``launcher-cache-<name>``; it belongs to no run and is never garbage.
- The volume ``launcher doctor --prove-self-destruct`` creates and deletes within seconds:
  label ``launcher-probe-<UTC yyyymmdd-hhmmss>-cache``, the volume of a pseudo-run, so that
  ``status``, ``gc`` and ``teardown`` find it should it ever be left behind.
- Bucket: ``<runs_prefix>/<run_id>/`` holds ``status.json``, ``manifest.json``, ``logs/``,
  outputs, and the code bundle ``code.tar.gz``.

A run id is ``<stage>-<UTC yyyymmdd-hhmmss>`` (see ``launcher.render.stage.run_id_for``).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from launcher.runner.vultr import run_tag

LAUNCHER_TAG = "launcher"
REUSABLE_VOLUME_PREFIX = "launcher-cache-"
PROBE_PREFIX = "launcher-probe-"

__all__ = ["LAUNCHER_TAG", "PROBE_PREFIX", "RunTags", "instance_tags", "launch_tag", "node_label",
           "node_tag", "parse_tags", "probe_volume_label", "reusable_volume_label", "run_tag",
           "volume_label", "volume_owner"]


def instance_tags(run_id: str, stage: str, expires_epoch: float) -> tuple[str, ...]:
    return (LAUNCHER_TAG, run_tag(run_id), f"stage:{stage}", f"expires:{int(expires_epoch)}")


def node_tag(index: int) -> str:
    """The tag of node ``index`` of an N-node run (node 0 hosts the rendezvous)."""
    return f"node:{index}"


def launch_tag(nonce: str) -> str:
    """The tag marking the instances of one launcher invocation (see the module docstring)."""
    return f"launch:{nonce}"


def node_label(run_id: str, index: int) -> str:
    """Node ``index``'s instance label; its volume's is ``volume_label(node_label(...))``."""
    return f"{run_id}-node{index}"


def volume_label(run_id: str) -> str:
    return f"{run_id}-cache"


_NODE_VOLUME = re.compile(r"^(?P<run>.+)-node(?P<node>0|[1-9][0-9]{0,3})-cache$")


def volume_owner(label: str) -> tuple[str, int | None]:
    """``(run_id, node)`` a volume label names: node k's volume of an N-node run gives
    ``(run_id, k)``, a one-machine run's ``(run_id, None)``, a reusable or foreign volume
    ``("", None)``."""
    if label.startswith(REUSABLE_VOLUME_PREFIX) or not label.endswith("-cache"):
        return "", None
    node = _NODE_VOLUME.match(label)
    if node:
        return node["run"], int(node["node"])
    return label[: -len("-cache")], None


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
    node: int | None = None  # the node index of an N-node run's instance


def parse_tags(tags: tuple[str, ...] | list[str]) -> RunTags:
    """Read :func:`instance_tags` back; unknown tags are ignored, a bad expiry is None."""
    if LAUNCHER_TAG not in tags:
        return RunTags()
    values = dict(t.split(":", 1) for t in tags if ":" in t)
    expires, node = values.get("expires", ""), values.get("node", "")
    return RunTags(values.get("run", ""), values.get("stage", ""),
                   int(expires) if expires.isdigit() else None,
                   int(node) if node.isdigit() else None)
