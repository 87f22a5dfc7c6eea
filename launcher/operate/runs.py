"""Runs as Vultr and the bucket see them, from any machine: no local state.

A run is what carries its id: instances tagged ``run:<id>`` and volumes labelled
``<id>-cache`` (read through the provider, :mod:`launcher.naming`), and the objects under
``<runs_prefix>/<id>/`` in the bucket, where the runner's heartbeat puts ``status.json``
(:mod:`launcher.runner.status`) and the log tails.

- :func:`read_status`: a run's ``status.json``, or why there is none.
- :func:`list_views` / :func:`view`: :class:`RunView` s, with the heartbeat's age (the time
  the bucket last received ``status.json``, which every heartbeat re-uploads, or its
  ``updated`` field if later) and an estimate of what the run has cost so far.

The bucket's side is :mod:`launcher.operate.runstatus` (``status.json``) and
:mod:`launcher.operate.nodes` (the nodes of an N-node run); their names are re-exported
here for the commands that read runs.
"""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from launcher.bucket import Bucket
from launcher.errors import ApiError, LauncherError
from launcher.naming import parse_tags, run_tag, volume_label
from launcher.operate.nodes import (
    NodeView,
    node_indices,
    node_views,
    nodes_in_bucket,
    read_node_statuses,
)
from launcher.operate.runstatus import (
    NOT_UPLOADED,
    STATUS_FILE,
    NoBucket,
    RunStatus,
    Store,
    read_status,
    read_statuses,
)
from launcher.providers.base import InstanceRef, Provider, RunResources, VolumeRef
from launcher.runner.spec import RunSpec

# The runner's heartbeat_s unless the stage sets another: its first status upload comes
# that long after training starts.
DEFAULT_HEARTBEAT_S = RunSpec.__dataclass_fields__["heartbeat_s"].default
RUN_ID_SUFFIX = re.compile(r"-\d{8}-\d{6}$")  # <stage>-<yyyymmdd-hhmmss>

Clock = Callable[[], float]


# -- prices --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Facts:
    """Creation times and $/h per resource id (what the provider knows of them)."""

    created: dict[str, float] = field(default_factory=dict)
    per_hour: dict[str, float | None] = field(default_factory=dict)


def read_facts(provider: Provider, runs: Iterable[RunResources]) -> Facts:
    """Creation time and price of the runs' instances and volumes. An instance whose record
    carries no price is priced by its plan (one catalogue read per provider, at most)."""
    runs = list(runs)
    instances = [i for r in runs for i in r.instances]
    unpriced = {i.plan for i in instances if i.usd_per_hour is None}
    plans = provider.plan_prices(unpriced) if unpriced else {}
    created: dict[str, float] = {}
    per_hour: dict[str, float | None] = {}
    for instance in instances:
        created[instance.id] = instance.created_epoch or 0.0
        per_hour[instance.id] = instance.usd_per_hour if instance.usd_per_hour is not None \
            else plans.get(instance.plan)
    for volume in (v for r in runs for v in r.volumes):
        created[volume.id] = volume.created_epoch or 0.0
        per_hour[volume.id] = volume.usd_per_hour
    return Facts({k: v for k, v in created.items() if v}, per_hour)


@dataclass(frozen=True)
class Cost:
    """An estimate: list price per hour × hours since each resource was created."""

    usd: float | None  # None when some price or creation time was unknown
    per_hour: float
    parts: tuple[str, ...] = ()


def estimate(resources: Iterable[tuple[str, str]], facts: Facts, now: float) -> Cost:
    """``resources``: (id, what) pairs, e.g. ("<id>", "plan vcg-…")."""
    total: float | None = 0.0
    per_hour_total = 0.0
    parts = []
    for rid, what in resources:
        rate, born = facts.per_hour.get(rid), facts.created.get(rid)
        if rate is None or born is None:
            total = None
            parts.append(f"{what}: price or age unknown")
            continue
        hours = max(now - born, 0.0) / 3600
        per_hour_total += rate
        if total is not None:
            total += rate * hours
        parts.append(f"{what} ${rate:.3f}/h × {hours:.1f} h")
    return Cost(None if total is None else round(total, 2), round(per_hour_total, 3),
                tuple(parts))


# -- views ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunView:
    """One run: what Vultr holds for it and what its status in the bucket says."""

    run_id: str
    stage: str
    expires: int | None
    instances: tuple[InstanceRef, ...]
    volumes: tuple[VolumeRef, ...]
    status: RunStatus
    cost: Cost
    created: float | None
    now: float
    instance_created: float | None = None  # the earliest of the run's instances
    # An N-node run's nodes; ``status`` is then node 0's (the rendezvous host's).
    nodes: tuple[NodeView, ...] = ()

    @property
    def starting(self) -> bool:
        """An instance and no status in the bucket yet: the machine boots, or the runner
        has not reached its first status upload (heartbeat_s after training starts)."""
        return bool(self.instances) and self.status.data is None \
            and self.status.problem == NOT_UPLOADED

    @property
    def first_heartbeat_in_s(self) -> float | None:
        """While :attr:`starting`: seconds until the earliest the first status can arrive,
        the instance's creation + the runner's default ``heartbeat_s`` (boot and the
        setup phases come before it, so it is a lower bound); negative once passed."""
        if not self.starting or self.instance_created is None:
            return None
        return self.instance_created + DEFAULT_HEARTBEAT_S - self.now

    @property
    def heartbeat_age_s(self) -> float | None:
        updated = self.status.updated
        return None if updated is None else max(self.now - updated, 0.0)

    @property
    def expires_in_s(self) -> float | None:
        return None if self.expires is None else self.expires - self.now

    @property
    def exists(self) -> bool:
        return bool(self.instances or self.volumes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "stage": self.stage,
            "state": self.status.state or None, "phase": self.status.phase or None,
            "final": self.status.final,
            "status_problem": self.status.problem or None,
            "bucket_unreachable": self.status.unreachable,
            "upload_verified": self.status.upload_verified,
            "heartbeat_age_s": _round(self.heartbeat_age_s),
            "starting": self.starting,
            "first_heartbeat_in_s": _round(self.first_heartbeat_in_s),
            "expires_epoch": self.expires, "expires_in_s": _round(self.expires_in_s),
            "instances": [{"id": i.id, "label": i.label, "region": i.region, "plan": i.plan,
                           "state": i.state, "ready": i.ready, "tags": list(i.tags)}
                          for i in self.instances],
            "volumes": [{"id": v.id, "label": v.label, "region": v.region,
                         "size_gb": v.size_gb, "attached_to": v.attached_to}
                        for v in self.volumes],
            "cost_estimate_usd": self.cost.usd, "cost_per_hour_usd": self.cost.per_hour,
            "cost_parts": list(self.cost.parts),
            "status": self.status.data,
            "nodes": [n.as_dict() for n in self.nodes],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def stage_of(run_id: str, instances: Iterable[InstanceRef]) -> str:
    """The ``stage:`` tag, else what the run id says (``<stage>-<yyyymmdd-hhmmss>``)."""
    for instance in instances:
        stage = parse_tags(instance.tags).stage
        if stage:
            return stage
    return RUN_ID_SUFFIX.sub("", run_id) if RUN_ID_SUFFIX.search(run_id) else ""


def make_view(resources: RunResources, status: RunStatus, facts: Facts, now: float,
              nodes: tuple[NodeView, ...] = ()) -> RunView:
    expiries = [e for e in (parse_tags(i.tags).expires_epoch for i in resources.instances)
                if e is not None]
    parts = [(i.id, f"plan {i.plan}") for i in resources.instances]
    parts += [(v.id, f"volume {v.label}") for v in resources.volumes]
    born = [facts.created[rid] for rid, _ in parts if rid in facts.created]
    booted = [facts.created[i.id] for i in resources.instances if i.id in facts.created]
    return RunView(resources.run_id, stage_of(resources.run_id, resources.instances),
                   min(expiries) if expiries else None, resources.instances, resources.volumes,
                   nodes[0].status if nodes else status, estimate(parts, facts, now),
                   min(born) if born else None, now, min(booted) if booted else None, nodes)


def list_views(provider: Provider, bucket: Store, *,
               now: Clock = time.time) -> list[RunView]:
    """Every run that has an instance or a volume, oldest first. A provider failure raises;
    a bucket failure is each run's status problem (``bucket unreachable: …``)."""
    runs = provider.list_runs()
    facts = read_facts(provider, runs)
    statuses = read_statuses(bucket, [r.run_id for r in runs])
    views = [make_view(run, statuses[run.run_id], facts, now(),
                       node_views(run, read_node_statuses(bucket, run.run_id,
                                                          node_indices(run))))
             for run in runs]
    return sorted(views, key=lambda v: (v.created or 0.0, v.run_id))


class NoSuchRun(LauncherError):
    """Nothing in Vultr and nothing in the bucket carries this run id."""


def no_such_run(run_id: str, provider: Provider, bucket: Store,
                bucket_says: str = "the bucket has no status for it") -> NoSuchRun:
    """The error for an unknown run id, naming the known ones it is close to (a typo)."""
    near = near_runs(run_id, provider, bucket)
    marks = (f"tagged {run_tag(run_id)} or labelled {volume_label(run_id)}"
             if provider.capabilities.tags else f"labelled with {run_tag(run_id)}")
    text = f"no run {run_id}: nothing in {provider.title} is {marks}, and {bucket_says}"
    if near:
        return NoSuchRun(f"{text}; did you mean {' or '.join(near)}?")
    return NoSuchRun(text, hint="`launcher status` lists the runs that have resources")


def near_runs(run_id: str, provider: Provider, bucket: Store) -> list[str]:
    """Known run ids close to ``run_id``: from the provider's tags and volume labels, and
    the runs with a status in the bucket (when the bucket can be read)."""
    known = {r.run_id for r in provider.list_runs()}
    if isinstance(bucket, Bucket):
        try:
            found = bucket.list(bucket.address.run_url("*", STATUS_FILE))
        except ApiError:
            found = []
        known.update(o.key.rsplit("/", 2)[-2] for o in found if o.key.count("/") >= 2)
    known.discard(run_id)
    return difflib.get_close_matches(run_id, sorted(known), n=3, cutoff=0.75)


def in_bucket(bucket: Store, run_id: str) -> bool | None:
    """Whether anything is stored under the run's prefix; None when the bucket cannot be
    asked."""
    if isinstance(bucket, NoBucket):
        return None
    try:
        return bool(bucket.list(bucket.address.run_url(run_id, "*")))
    except ApiError:
        return None


def view(run_id: str, provider: Provider, bucket: Store, *,
         now: Clock = time.time) -> RunView:
    """One run; :class:`NoSuchRun` when neither Vultr nor the bucket knows it."""
    resources = provider.find_run(run_id)
    status = read_status(bucket, run_id)
    indices = sorted(set(node_indices(resources)) | set(nodes_in_bucket(bucket, run_id)))
    if resources.empty and status.problem == NOT_UPLOADED and not indices:
        raise no_such_run(run_id, provider, bucket)
    facts = read_facts(provider, [resources])
    nodes = node_views(resources, read_node_statuses(bucket, run_id, indices))
    return make_view(resources, status, facts, now(), nodes)

