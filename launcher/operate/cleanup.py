"""Stopping runs and collecting what they left: ``teardown`` of one run, ``gc`` of all.

Both work from Vultr's tags and labels and the bucket's ``status.json`` only. Each first
*plans* (a list of :class:`Action` s: delete, or keep and why), then :func:`execute` carries
the plan out and returns one :class:`Outcome` per resource. Rules:

- Deleting something already gone is success ("already gone").
- A run's volume is deleted only when the bucket shows a verified upload
  (:attr:`launcher.operate.runstatus.RunStatus.upload_verified`) or with ``force``; otherwise it
  is kept and the reason says so: its data may exist nowhere else. Node k's volume of an
  N-node run goes by node k's upload (``nodes/<k>/status.json``), whatever the others did.
- ``gc`` collects an N-node run node by node: a node's instance when its own status is
  final, its ``expires:`` tag passed, or its runner is gone (:mod:`launcher.operate.nodegc`);
  its volume once that node's instance is gone or collected.
- Reusable volumes (``launcher-cache-<name>``) belong to no run and are never touched; nor is
  anything without the launcher's tag or a run volume's label.
- Whatever could not be deleted is reported with the ``curl`` commands that delete it.
- ``gc`` raises when Vultr or the bucket cannot be read: "nothing to collect" is said only
  when it was looked at.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from launcher.errors import ApiError, ConfigError, LauncherError
from launcher.naming import REUSABLE_VOLUME_PREFIX, parse_tags, volume_owner
from launcher.operate.nodegc import ClusterRun, StageTimes, no_stage, node_end, read_cluster
from launcher.operate.nodes import node_indices, read_node_statuses
from launcher.operate.runs import stage_of
from launcher.operate.runstatus import NoBucket, RunStatus, Store, read_status, read_statuses
from launcher.providers.base import Provider, RunResources, VolumeRef
from launcher.timefmt import duration

KEEP_UNVERIFIED = ("the bucket has no verified upload for this run — its data may be only on "
                   "the volume")
VOLUME_GRACE_S = 1800.0  # a volume this young, without instance or status, may be mid-launch


@dataclass(frozen=True)
class Action:
    """One resource and what to do with it: ``delete``, or keep it for ``reason``."""

    kind: str  # "instance" | "volume"
    id: str
    label: str
    run_id: str
    delete: bool
    reason: str
    attached_to: str | None = None


@dataclass(frozen=True)
class Outcome:
    """``result``: deleted, already gone, kept or failed; ``commands`` remove what is left."""

    action: Action
    result: str
    detail: str = ""
    commands: tuple[str, ...] = ()

    @property
    def remains(self) -> bool:
        return self.result in ("kept", "failed")

    def as_dict(self) -> dict:
        return {**asdict(self.action), "result": self.result, "detail": self.detail,
                "commands": list(self.commands)}


def execute(provider: Provider, actions: list[Action]) -> list[Outcome]:
    """Instances first, then volumes (a volume is detached first when attached). One failure
    does not stop the rest; each is reported with the commands that finish the job."""
    outcomes = []
    for action in sorted(actions, key=lambda a: a.kind != "instance"):
        commands = provider.delete_commands(action.kind, action.id, action.attached_to)
        if not action.delete:
            outcomes.append(Outcome(action, "kept", action.reason, commands))
            continue
        delete = provider.delete_instance if action.kind == "instance" else \
            provider.delete_volume
        try:
            existed = delete(action.id)
        except LauncherError as exc:
            outcomes.append(Outcome(action, "failed", str(exc).replace("\n", " "), commands))
            continue
        outcomes.append(Outcome(action, "deleted" if existed else "already gone"))
    return outcomes


# -- teardown ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TeardownPlan:
    run_id: str
    actions: list[Action]
    status: RunStatus | None  # None when nothing of the run exists


def plan_teardown(provider: Provider, bucket: Store, run_id: str, *,
                  keep_volume: bool = False, force: bool = False) -> TeardownPlan:
    """Delete the run's instances; its volumes per the module's rules (node k's volume by
    node k's upload). An empty plan means nothing of the run exists any more (which is what
    teardown wants)."""
    resources = provider.find_run(run_id)
    status = None if resources.empty else read_status(bucket, run_id)
    nodes = read_node_statuses(bucket, run_id, node_indices(resources))
    actions = []
    for instance in resources.instances:
        node = parse_tags(instance.tags).node
        mine = nodes.get(node, status) if node is not None else status
        actions.append(Action("instance", instance.id, instance.label, run_id, True,
                              _teardown_reason(mine, "run" if node is None else f"node {node}")))
    for volume in resources.volumes:
        node = volume_owner(volume.label)[1]  # node k's volume: node k's upload decides
        delete, reason = _volume_verdict(nodes.get(node, status) if node is not None
                                         else status, keep_volume=keep_volume, force=force)
        actions.append(Action("volume", volume.id, volume.label, run_id, delete, reason,
                              volume.attached_to))
    return TeardownPlan(run_id, actions, status)


def _teardown_reason(status: RunStatus | None, who: str) -> str:
    if status is not None and status.data is not None and not status.final:
        return (f"teardown requested (the {who} is still {status.state}: it stops without "
                "uploading its outputs)")
    return "teardown requested"


def _volume_verdict(status: RunStatus | None, *, keep_volume: bool,
                    force: bool) -> tuple[bool, str]:
    if keep_volume:
        return False, "kept as asked (--keep-volume); it bills until deleted"
    assert status is not None
    if status.upload_verified:
        return True, "upload verified in the bucket"
    if force:
        return True, "--force: deleted without a verified upload"
    if status.data is None:
        return False, f"{KEEP_UNVERIFIED} ({status.problem})"
    return False, KEEP_UNVERIFIED


# -- gc ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sweep:
    """One gc pass: its time, ``--force``, and when each run volume was created."""

    at: float
    force: bool
    volume_born: dict[str, float | None]


def plan_gc(provider: Provider, bucket: Store, *, force: bool = False,
            now: Callable[[], float] = time.time,
            stage_times: StageTimes = no_stage) -> list[Action]:
    """Instances whose run ended (final status in the bucket) or expired (``expires:`` tag
    passed); run volumes whose run has no instance left (or only ones collected here).
    Volumes without a verified upload are kept unless ``force``; so is, always, a young
    volume of a run with no instance and no status yet (a launch may be creating them).
    An N-node run goes node by node (the module docstring); ``stage_times`` gives a stage's
    cluster times."""
    if isinstance(bucket, NoBucket):
        raise ConfigError(f"gc reads each run's status from the bucket: {bucket.reason}",
                          hint="`launcher teardown RUN` removes one run without the bucket")
    runs = provider.list_runs()
    sweep = Sweep(now(), force, {v.id: v.created_epoch for r in runs for v in r.volumes})
    statuses = read_statuses(bucket, [r.run_id for r in runs])
    actions: list[Action] = []
    for run in runs:
        status = statuses[run.run_id]
        if status.unreachable:
            raise ApiError(f"gc cannot tell which runs ended: {status.problem}",
                           hint="fix the bucket's settings or keys (`launcher doctor`); "
                           "`launcher teardown RUN` removes one run regardless")
        if node_indices(run):
            cluster = read_cluster(bucket, run, stage_of(run.run_id, run.instances),
                                   stage_times)
            actions += _gc_cluster(run, cluster, sweep)
        else:
            actions += _gc_run(run, status, sweep)
    return actions


def _gc_run(run: RunResources, status: RunStatus, sweep: Sweep) -> list[Action]:
    """A one-machine run: its instances by the run's status, its volumes once none is left."""
    actions = []
    for instance in run.instances:
        why = _instance_reason(status, parse_tags(instance.tags).expires_epoch, sweep.at)
        if why:
            actions.append(Action("instance", instance.id, instance.label, run.run_id, True,
                                  why))
    collected = {a.id for a in actions}
    if len(collected) < len(run.instances):
        return actions  # the run still has a live instance: its volume is in use
    return actions + [_gc_volume(run.run_id, v, status, collected, sweep, "its run",
                                 bool(run.instances))
                      for v in run.volumes if not v.label.startswith(REUSABLE_VOLUME_PREFIX)]


def _gc_cluster(run: RunResources, cluster: ClusterRun, sweep: Sweep) -> list[Action]:
    """An N-node run, node by node: each node's instance by its own status, expiry and
    liveness; each node's volume once that node's instance is gone or collected."""
    actions, by_node = [], {}
    for instance in run.instances:
        tags = parse_tags(instance.tags)
        if tags.node is not None:
            by_node[tags.node] = instance
        who = "run" if tags.node is None else f"node {tags.node}"
        why = _instance_reason(cluster.status(tags.node), tags.expires_epoch, sweep.at, who)
        if not why and tags.node is not None:
            why = node_end(cluster, tags.node, sweep.at)
        if why:
            actions.append(Action("instance", instance.id, instance.label, run.run_id, True,
                                  why))
    collected = {a.id for a in actions}
    for volume in run.volumes:
        node = volume_owner(volume.label)[1]
        owners = list(run.instances) if node is None else \
            [by_node[node]] if node in by_node else []
        if volume.label.startswith(REUSABLE_VOLUME_PREFIX) or \
                any(o.id not in collected for o in owners):
            continue  # its instance is live: the volume is in use
        whose = "its run" if node is None else f"node {node}"
        actions.append(_gc_volume(run.run_id, volume, cluster.status(node), collected, sweep,
                                  whose, bool(owners)))
    return actions


def _gc_volume(run_id: str, volume: VolumeRef, status: RunStatus, collected: set[str],
               sweep: Sweep, whose: str, had_instances: bool) -> Action:
    delete, why = _orphan_verdict(status, volume.attached_to, collected,
                                  sweep.volume_born.get(volume.id), sweep.at, sweep.force,
                                  had_instances=had_instances, whose=whose)
    return Action("volume", volume.id, volume.label, run_id, delete, why, volume.attached_to)


def _instance_reason(status: RunStatus, expires: int | None, at: float,
                     who: str = "run") -> str:
    if status.final:
        return f"{who} {status.state} (status in the bucket)"
    if expires is not None and expires <= at:
        return f"expired {duration(at - expires)} ago (tag expires:{expires})"
    return ""


def _orphan_verdict(status: RunStatus, attached_to: str | None, collected: set[str],
                    born: float | None, at: float, force: bool, *,
                    had_instances: bool, whose: str = "its run") -> tuple[bool, str]:
    why = f"{whose}'s instance is collected too" if had_instances else \
        f"{whose} has no instance left"
    if attached_to and attached_to not in collected:
        return False, f"attached to instance {attached_to}, which is not this run's: kept"
    if not had_instances and status.data is None and born is not None \
            and at - born < VOLUME_GRACE_S:
        return False, (f"created {duration(max(at - born, 0))} ago with no instance yet: "
                       "a launch may be in progress; kept")
    if status.upload_verified:
        return True, f"{why}; upload verified"
    if force:
        return True, f"{why}; --force (no verified upload)"
    return False, f"{why}; {KEEP_UNVERIFIED} (--force deletes it)"
