"""When gc counts a node of an N-node run as ended though its own status is not final.

A node whose runner died while its machine stays up never writes a final status, and its
instance bills until the ``expires:`` tag passes. Two signs say it ended sooner
(:func:`node_end`):

(a) its liveness record ``cluster/alive/<k>.json`` says ``training`` and is older than the
    record's own ``stale_after_s``, else the stage's ``cluster.peer_timeout_s`` (60 s when gc
    does not know the stage): while a node trains its runner rewrites the record every few
    seconds, and after this long its peers have declared it lost and failed already;
(b) it has no liveness record (it never trained) and another node of the run failed (its
    ``nodes/<j>/status.json`` final ``failed``) longer than the stage's
    ``cluster.reap_grace_s`` (300 s) ago: by then every node still healthy has seen the
    failure and ended.

Neither applies to a node whose status shows it past training (``upload``, ``teardown``): its
runner is finishing and deletes its own instance, and its last record may be stale only
because the final one could not be written. A final liveness state (``succeeded`` /
``failed``) is written once, so its age says nothing: that node's status decides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from launcher.errors import ApiError
from launcher.operate.nodes import (
    ALIVE_DIR,
    Liveness,
    listed_nodes,
    node_indices,
    read_liveness,
    read_node_statuses,
)
from launcher.operate.runstatus import NOT_UPLOADED, RunStatus, Store
from launcher.providers.base import RunResources
from launcher.runner.spec import ClusterSpec
from launcher.timefmt import duration

DEFAULT_PEER_TIMEOUT_S = float(ClusterSpec.__dataclass_fields__["peer_timeout_s"].default)
DEFAULT_REAP_GRACE_S = float(ClusterSpec.__dataclass_fields__["reap_grace_s"].default)
PAST_TRAINING = frozenset({"upload", "teardown"})
NO_STATUS = RunStatus(problem=NOT_UPLOADED)


@dataclass(frozen=True)
class ClusterTimes:
    """A run's ``cluster.peer_timeout_s`` and ``cluster.reap_grace_s``; ``source`` says where
    they come from, for the reasons gc gives."""

    peer_timeout_s: float = DEFAULT_PEER_TIMEOUT_S
    reap_grace_s: float = DEFAULT_REAP_GRACE_S
    source: str = "the default: gc does not know the run's stage"


StageTimes = Callable[[str], ClusterTimes | None]  # a stage's times; None: not known here


def no_stage(name: str) -> ClusterTimes | None:
    """The :data:`StageTimes` of a gc that reads no stage files."""
    return None


@dataclass(frozen=True)
class ClusterRun:
    """What gc reads of an N-node run besides its resources: every node's status (each node
    an instance, a volume or the bucket names) and liveness record."""

    run_id: str
    statuses: dict[int, RunStatus]
    alive: dict[int, Liveness]
    times: ClusterTimes

    def status(self, node: int | None) -> RunStatus:
        return NO_STATUS if node is None else self.statuses.get(node, NO_STATUS)


def read_cluster(bucket: Store, run: RunResources, stage: str,
                 stage_times: StageTimes) -> ClusterRun:
    """The run's node statuses and liveness records; ApiError when the bucket cannot say
    (gc never takes "could not read" for "not there")."""
    found = listed_nodes(bucket, run.run_id)
    statuses = read_node_statuses(bucket, run.run_id, set(node_indices(run)) | set(found))
    for index, status in sorted(statuses.items()):
        if status.unreachable:
            raise ApiError(f"gc cannot tell whether node {index} of run {run.run_id} ended: "
                           f"{status.problem}")
    times = (stage_times(stage) if stage else None) or ClusterTimes()
    return ClusterRun(run.run_id, statuses, read_liveness(bucket, run.run_id), times)


def node_end(cluster: ClusterRun, node: int, at: float) -> str:
    """Why node ``node``'s instance counts as ended at ``at`` (see the module docstring);
    "" while it may still be alive."""
    if cluster.status(node).phase in PAST_TRAINING:
        return ""
    record = cluster.alive.get(node)
    if record is not None:
        return _stale(record, cluster.times, at)
    return _peer_failed(cluster, node, at)


def _stale(record: Liveness, times: ClusterTimes, at: float) -> str:
    if record.state != "training":
        return ""
    if record.stale_after_s is not None:
        limit, source = record.stale_after_s, "the record's stale_after_s"
    else:
        limit, source = times.peer_timeout_s, f"peer_timeout_s, {times.source}"
    age = at - record.at
    if age <= limit:
        return ""
    return (f"node {record.node}'s runner stopped while its instance stayed up: its liveness "
            f"record ({ALIVE_DIR}/{record.node}.json, training) is {duration(age)} old, "
            f"past {limit:g} s ({source})")


def _peer_failed(cluster: ClusterRun, node: int, at: float) -> str:
    grace = cluster.times.reap_grace_s
    for other, status in sorted(cluster.statuses.items()):
        updated = status.updated
        if other == node or status.state != "failed" or updated is None:
            continue
        if at - updated > grace:
            return (f"node {node} never wrote a liveness record and node {other} failed "
                    f"{duration(at - updated)} ago, past reap_grace_s {grace:g} s "
                    f"({cluster.times.source}): the run is over")
    return ""
