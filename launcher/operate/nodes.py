"""The nodes of an N-node run as the provider and the bucket see them, from any machine.

Node ``k`` of a run is the instance tagged ``node:<k>`` (label ``<run_id>-node<k>``), its
volume ``<run_id>-node<k>-cache`` (:mod:`launcher.naming`), and under the run's folder in the
bucket (the runner's layout, :mod:`launcher.runner.peers`):

- ``nodes/<k>/status.json``: node k's status, as ``status.json`` is for one machine;
- ``cluster/alive/<k>.json``: node k's liveness record, ``{"node", "state", "at"}`` (and
  ``stale_after_s`` when the runner says how old it may get), rewritten every few seconds
  while node k trains (``state: training``) and written once more when training ends
  (``succeeded`` / ``failed``).
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from launcher.errors import ApiError
from launcher.naming import node_label, parse_tags, volume_label, volume_owner
from launcher.operate.runstatus import (
    STATUS_FILE,
    STATUS_READERS,
    NoBucket,
    RunStatus,
    Store,
    read_status,
)
from launcher.providers.base import InstanceRef, RunResources, VolumeRef
from launcher.timefmt import parse_time

ALIVE_DIR = "cluster/alive"
ALIVE_STATES = ("training", "succeeded", "failed")


def node_status_file(index: int | str) -> str:
    """Node ``index``'s ``status.json`` under the run's folder (an N-node run's)."""
    return f"nodes/{index}/{STATUS_FILE}"


def node_indices(resources: RunResources) -> list[int]:
    """The node indices an N-node run's instances (``node:<k>`` tag) and volumes
    (``<run_id>-node<k>-cache``) name; [] for a one-machine run."""
    found = {parse_tags(i.tags).node for i in resources.instances}
    found |= {volume_owner(v.label)[1] for v in resources.volumes}
    return sorted(k for k in found if k is not None)


def read_node_statuses(bucket: Store, run_id: str,
                       nodes: Iterable[int]) -> dict[int, RunStatus]:
    """Each node's ``nodes/<k>/status.json`` (:func:`read_status`: never raises for the
    bucket's sake), several at a time."""
    nodes = sorted(set(nodes))
    if len(nodes) < 2:
        return {k: read_status(bucket, run_id, node_status_file(k)) for k in nodes}
    with ThreadPoolExecutor(min(STATUS_READERS, len(nodes))) as pool:
        found = pool.map(lambda k: read_status(bucket, run_id, node_status_file(k)), nodes)
        return dict(zip(nodes, found, strict=True))


def listed_nodes(bucket: Store, run_id: str) -> list[int]:
    """The nodes whose ``status.json`` the bucket holds; raises ApiError when it cannot be
    listed (and for :class:`NoBucket`)."""
    if isinstance(bucket, NoBucket):
        raise ApiError(f"the bucket is not configured: {bucket.reason}")
    found = bucket.list(bucket.address.run_url(run_id, node_status_file("*")))
    parts = (o.key.rsplit("/", 3) for o in found)
    return sorted({int(p[-2]) for p in parts
                   if len(p) == 4 and p[-3] == "nodes" and p[-2].isdigit()
                   and p[-1] == STATUS_FILE})


def nodes_in_bucket(bucket: Store, run_id: str) -> list[int]:
    """:func:`listed_nodes`, or [] when the bucket cannot be asked (a view shows the
    bucket's problem elsewhere)."""
    try:
        return listed_nodes(bucket, run_id)
    except ApiError:
        return []


# -- liveness ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Liveness:
    """Node ``node``'s liveness record. ``at``: the later of the record's own time (the
    node's clock) and when the bucket received it (the bucket's), so a node whose clock
    runs late is not taken for a silent one. ``stale_after_s``: the record's own limit,
    None when it gives none."""

    node: int
    state: str
    at: float
    stale_after_s: float | None = None


def liveness_of(data: dict[str, Any], received: float | None) -> Liveness | None:
    """A record as the runner writes it; None for anything else."""
    try:
        node, state, at = int(data["node"]), str(data["state"]), float(data["at"])
        limit = data.get("stale_after_s")
        stale_after_s = None if limit is None else float(limit)
    except (KeyError, TypeError, ValueError):
        return None
    if state not in ALIVE_STATES or (stale_after_s is not None and stale_after_s <= 0):
        return None
    return Liveness(node, state, max(at, received or at), stale_after_s)


def read_liveness(bucket: Store, run_id: str) -> dict[int, Liveness]:
    """Every node's ``cluster/alive/<k>.json`` that reads as a record of node k; raises
    ApiError when the bucket cannot be listed or a record not read."""
    if isinstance(bucket, NoBucket):
        raise ApiError(f"the bucket is not configured: {bucket.reason}")
    found = bucket.list(bucket.address.run_url(run_id, f"{ALIVE_DIR}/*.json"))
    records: dict[int, Liveness] = {}
    for item in found:
        name = item.key.rsplit("/", 1)[-1].removesuffix(".json")
        if not name.isdigit():
            continue
        data = bucket.read_json(bucket.address.run_url(run_id, f"{ALIVE_DIR}/{name}.json"))
        record = liveness_of(data, parse_time(item.last_modified))
        if record is not None and record.node == int(name):
            records[record.node] = record
    return records


# -- views ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class NodeView:
    """Node ``index`` of an N-node run: its instance and volume (None once gone) and its
    status in the bucket (``<run>/nodes/<k>/status.json``)."""

    index: int
    instance: InstanceRef | None
    volume: VolumeRef | None
    status: RunStatus

    def as_dict(self) -> dict[str, Any]:
        i, v, s = self.instance, self.volume, self.status
        return {"node": self.index, "instance": i.id if i else None,
                "internal_ip": (i.internal_ip or None) if i else None,
                "volume": v.id if v else None, "state": s.state or None,
                "phase": s.phase or None, "status_problem": s.problem or None,
                "upload_verified": s.upload_verified}


def node_views(resources: RunResources, statuses: dict[int, RunStatus]) -> tuple[NodeView, ...]:
    """One view per node of ``statuses``, with the node's instance and volume."""
    by_tag = {parse_tags(i.tags).node: i for i in resources.instances}
    by_label = {v.label: v for v in resources.volumes}
    return tuple(NodeView(k, by_tag.get(k),
                          by_label.get(volume_label(node_label(resources.run_id, k))), status)
                 for k, status in sorted(statuses.items()))
