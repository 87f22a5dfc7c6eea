"""The provisioner's records: what a launch was asked for, what it plans, what it did.

All frozen dataclasses; nothing here does I/O. Money is in US dollars, time in hours or
epoch seconds as named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from launcher.config import GpuProfile, Overrides, StageConfig
from launcher.errors import LauncherError
from launcher.providers import InstanceRef, RunResources, VolumeRef
from launcher.providers.offers import HOURS_PER_MONTH, Offer
from launcher.provision.failover import Skipped

# Vultr block storage, USD per GB-month (vultr.com/pricing/#block-storage: NVMe "high_perf"
# $0.10, HDD "storage_opt" $0.025), billed by the hour at monthly / 730. Used for the estimate
# only: Vultr bills what it bills.
VOLUME_USD_PER_GB_MONTH = {"high_perf": 0.10, "storage_opt": 0.025}

# Deadlines of the launch's own waits, in seconds.
VOLUME_READY_S = 300.0
# Vultr documents that a deployment from a snapshot "may take an additional 10-15 minutes"
# over a standard one (a few minutes for a GPU plan): 20 minutes could roll back a slow but
# healthy boot (docs/performance.md).
INSTANCE_READY_S = 1800.0
ATTACH_S = 300.0
# A plan's look-up of the run is used as is by a launch that starts within this many seconds
# (``--yes``, a quick answer); an older one is read again before anything is created.
LISTING_FRESH_S = 10.0
DELETE_DEADLINE_S = 180.0  # per resource, during a rollback or a failover's region switch


def volume_usd_per_month(size_gb: int, kind: str) -> float:
    """What a volume of ``size_gb`` of type ``kind`` costs per month (the high_perf rate for
    an unknown type: the estimate errs high)."""
    return size_gb * VOLUME_USD_PER_GB_MONTH.get(kind, VOLUME_USD_PER_GB_MONTH["high_perf"])


def volume_usd_per_hour(size_gb: int, kind: str) -> float:
    """:func:`volume_usd_per_month` per hour."""
    return volume_usd_per_month(size_gb, kind) / HOURS_PER_MONTH


@dataclass(frozen=True)
class LaunchRequest:
    """What ``launcher run`` was asked: the stage, its overrides, where the code is.
    ``run_id`` resumes (reconciles) that run instead of starting a new one.
    ``allow_second_volume``: a candidate may create a reusable volume in a region where there
    is none although one with that label exists elsewhere (``--allow-second-volume``)."""

    stage: str
    config_dir: Path
    overrides: Overrides = field(default_factory=Overrides)
    run_id: str | None = None
    code_dir: Path = Path()
    dry_run: bool = False
    allow_second_volume: bool = False


@dataclass(frozen=True)
class SnapshotChoice:
    """The snapshot the instance boots, and why it was chosen."""

    id: str
    description: str
    date_created: str
    why: str


@dataclass(frozen=True)
class VolumePlan:
    """The volume a candidate uses: ``reuse`` an existing one (``volume`` is set; never
    deleted by this launch), ``create`` one labelled ``label``, or none at all: ``disk``, the
    machine's own disk of ``size_gb`` is the cache (a cloud without volumes; its price is in
    the offer's)."""

    action: Literal["reuse", "create", "disk"]
    region: str
    label: str
    size_gb: int
    kind: str
    volume: VolumeRef | None = None

    def describe(self) -> str:
        if self.action == "disk":
            return f"the machine's own disk ({self.size_gb} GB, in its price)"
        if self.volume is not None:
            return f"reuse {self.volume.label} ({self.volume.id}, {self.volume.size_gb} GB)"
        return f"new {self.label} ({self.size_gb} GB {self.kind})"


@dataclass(frozen=True)
class Estimate:
    """Worst-case cost: the plan's and the volume's hourly price for ``hours`` (the run's
    ceiling: ``max_hours``, or less when ``max_cost_usd`` buys less)."""

    plan_usd_per_hour: float
    volume_usd_per_hour: float
    hours: float

    @property
    def usd_per_hour(self) -> float:
        return self.plan_usd_per_hour + self.volume_usd_per_hour

    @property
    def worst_case_usd(self) -> float:
        return self.usd_per_hour * self.hours

    def as_dict(self) -> dict[str, float]:
        return {"plan_usd_per_hour": round(self.plan_usd_per_hour, 4),
                "volume_usd_per_hour": round(self.volume_usd_per_hour, 4),
                "usd_per_hour": round(self.usd_per_hour, 4), "max_hours": round(self.hours, 3),
                "worst_case_usd": round(self.worst_case_usd, 2)}


@dataclass(frozen=True)
class Candidate:
    """One offer to try, with the GPU profile it satisfies, the stage as launched on that
    profile, its volume and its estimate."""

    offer: Offer
    profile: GpuProfile
    stage: StageConfig
    volume: VolumePlan
    estimate: Estimate

    def as_dict(self) -> dict[str, Any]:
        o = self.offer
        return {"profile": self.profile.name, "plan": o.plan_id, "region": o.region,
                "gpu": o.gpu_model or o.gpu_type, "gpu_count": o.gpu_count,
                "vram_per_gpu_gb": o.vram_per_gpu_gb, "volume": self.volume.describe(),
                "estimate": self.estimate.as_dict()}


@dataclass(frozen=True)
class SshKeyPlan:
    """The key from ``path``: ``key_id`` of the account's key with the same body, or None
    when the reconcile must register it as ``name``. A public key is not a secret."""

    path: str
    public_key: str
    name: str
    fingerprint: str
    key_id: str | None = None

    @property
    def must_register(self) -> bool:
        return self.key_id is None

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "fingerprint": self.fingerprint, "name": self.name,
                "key_id": self.key_id, "action": "register" if self.must_register else "reuse"}


@dataclass(frozen=True)
class LaunchPlan:
    """Everything a launch needs, resolved read-only. ``existing`` is what the provider
    already holds for ``run_id``; ``notes`` are warnings to show before confirming."""

    run_id: str
    stage: StageConfig
    snapshot: SnapshotChoice
    candidates: tuple[Candidate, ...]
    existing: RunResources
    code_dir: Path
    ssh_key: SshKeyPlan | None = None
    notes: tuple[str, ...] = ()
    listed_at: float | None = None  # deps.monotonic() when ``existing`` was read

    @property
    def first(self) -> Candidate:
        return self.candidates[0]

    @property
    def resuming(self) -> bool:
        return not self.existing.empty

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "stage": self.stage.name,
                "snapshot": {"id": self.snapshot.id, "description": self.snapshot.description,
                             "why": self.snapshot.why},
                "candidates": [c.as_dict() for c in self.candidates],
                "existing": {"instances": [i.id for i in self.existing.instances],
                             "volumes": [v.id for v in self.existing.volumes]},
                "ssh_key": self.ssh_key.as_dict() if self.ssh_key else None,
                "notes": list(self.notes)}


@dataclass(frozen=True)
class CodeBundle:
    """The launching checkout as ``git archive`` packed it: uploaded to ``key`` (relative to
    the bucket) with ``sha256``. ``dirty``: uncommitted changes were left out."""

    path: Path
    key: str
    url: str
    sha256: str
    size: int
    git_sha: str
    dirty: bool

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "url": self.url, "sha256": self.sha256, "bytes": self.size,
                "git_sha": self.git_sha, "dirty": self.dirty}


@dataclass(frozen=True)
class NodeResult:
    """Node ``index`` of an N-node run: its instance and its attached volume."""

    index: int
    instance: InstanceRef
    volume: VolumeRef

    def as_dict(self) -> dict[str, Any]:
        return {"node": self.index, "instance": self.instance.id,
                "region": self.instance.region, "internal_ip": self.instance.internal_ip or None,
                "volume": self.volume.id, "label": self.instance.label}


@dataclass(frozen=True)
class LaunchResult:
    """A launched (or reconciled) run: the instance with its volume attached (``volume``
    None: a cloud without volumes, whose machine's own disk is the cache). An N-node run
    has every node in ``nodes``; ``instance`` and ``volume`` are then node 0's."""

    run_id: str
    stage: str
    candidate: Candidate | None
    instance: InstanceRef
    volume: VolumeRef | None
    created: tuple[str, ...]
    reused: tuple[str, ...]
    code: CodeBundle | None
    deadline_epoch: float | None
    tried: tuple[Skipped, ...] = ()
    notes: tuple[str, ...] = ()
    nodes: tuple[NodeResult, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        status = "launched" if self.created else "reconciled: nothing was missing"
        return {"run_id": self.run_id, "stage": self.stage, "status": status,
                "instance": {"id": self.instance.id, "region": self.instance.region,
                             "plan": self.instance.plan, "tags": list(self.instance.tags)},
                "volume": None if self.volume is None else {
                    "id": self.volume.id, "label": self.volume.label,
                    "mount_id": self.volume.mount_id, "attached_to": self.volume.attached_to},
                "candidate": self.candidate.as_dict() if self.candidate else None,
                "created": list(self.created), "reused": list(self.reused),
                "code": self.code.as_dict() if self.code else None,
                "deadline_epoch": self.deadline_epoch,
                "tried": [s.as_row() for s in self.tried], "notes": list(self.notes),
                "nodes": [n.as_dict() for n in self.nodes],
                "follow": [f"launcher status {self.run_id}",
                           f"launcher logs {self.run_id} --follow"]}


@dataclass(frozen=True)
class PlannedCall:
    """A call a dry run would have made (a mutation, or a read proving the instance's key);
    ``body`` has secrets and user data masked."""

    method: str
    target: str
    body: dict[str, Any] | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "target": self.target, "body": self.body,
                "note": self.note}


@dataclass(frozen=True)
class DryRunResult:
    """What ``run --dry-run`` resolved and would do; ``document`` is the redacted text."""

    plan: LaunchPlan
    calls: tuple[PlannedCall, ...]
    document: str
    document_size: str
    code: CodeBundle | None
    spec: str = ""  # run.json as the bootstrap would fetch it (no secrets in it)

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": True, "run_id": self.plan.run_id, "plan": self.plan.as_dict(),
                "estimate": self.plan.first.estimate.as_dict(),
                "calls": [c.as_dict() for c in self.calls],
                "code": self.code.as_dict() if self.code else None,
                "document_size": self.document_size, "document": self.document,
                "spec": self.spec}


# -- errors ---------------------------------------------------------------------------------

class LaunchCancelledError(LauncherError):
    """The person declined the plan; nothing was created."""

    exit_code = 1


class CapacityExhaustedError(LauncherError):
    """Every candidate offer of every GPU profile was refused; ``tried`` says why."""

    exit_code = 1

    def __init__(self, message: str, tried: tuple[Skipped, ...]) -> None:
        super().__init__(message)
        self.tried = tried


class RunStateError(LauncherError):
    """What the provider holds for a resumed run cannot be reconciled automatically."""

    exit_code = 1


class RollbackIncompleteError(LauncherError):
    """A launch failed and its rollback could not delete everything: ``remaining`` lists
    what may still bill, each with the command that deletes it."""

    exit_code = 5

    def __init__(self, message: str, remaining: tuple[str, ...], cause: BaseException) -> None:
        super().__init__(message)
        self.remaining = remaining
        self.cause = cause
