"""Stopping runs and collecting what they left: ``teardown`` of one run, ``gc`` of all.

Both work from Vultr's tags and labels and the bucket's ``status.json`` only. Each first
*plans* (a list of :class:`Action` s: delete, or keep and why), then :func:`execute` carries
the plan out and returns one :class:`Outcome` per resource. Rules:

- Deleting something already gone is success ("already gone").
- A run's volume is deleted only when the bucket shows a verified upload
  (:attr:`launcher.operate.runs.RunStatus.upload_verified`) or with ``force``; otherwise it is kept
  and the reason says so: its data may exist nowhere else.
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
from launcher.naming import REUSABLE_VOLUME_PREFIX, parse_tags
from launcher.operate.runs import NoBucket, RunStatus, Store, read_status, read_statuses
from launcher.providers.base import Provider
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
    """Delete the run's instances; its volumes per the module's rules. An empty plan means
    nothing of the run exists any more (which is what teardown wants)."""
    resources = provider.find_run(run_id)
    status = None if resources.empty else read_status(bucket, run_id)
    why = "teardown requested"
    if status is not None and status.data is not None and not status.final:
        why += (f" (the run is still {status.state}: it stops without uploading its "
                "outputs)")
    actions = [Action("instance", i.id, i.label, run_id, True, why)
               for i in resources.instances]
    for volume in resources.volumes:
        delete, reason = _volume_verdict(status, keep_volume=keep_volume, force=force)
        actions.append(Action("volume", volume.id, volume.label, run_id, delete, reason,
                              volume.attached_to))
    return TeardownPlan(run_id, actions, status)


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

def plan_gc(provider: Provider, bucket: Store, *,
            force: bool = False, now: Callable[[], float] = time.time) -> list[Action]:
    """Instances whose run ended (final status in the bucket) or expired (``expires:`` tag
    passed); run volumes whose run has no instance left (or only ones collected here).
    Volumes without a verified upload are kept unless ``force``; so is, always, a young
    volume of a run with no instance and no status yet (a launch may be creating them)."""
    if isinstance(bucket, NoBucket):
        raise ConfigError(f"gc reads each run's status from the bucket: {bucket.reason}",
                          hint="`launcher teardown RUN` removes one run without the bucket")
    runs = provider.list_runs()
    volume_born = {v.id: v.created_epoch for r in runs for v in r.volumes}
    at = now()
    statuses = read_statuses(bucket, [r.run_id for r in runs])
    actions: list[Action] = []
    for run in runs:
        status = statuses[run.run_id]
        if status.unreachable:
            raise ApiError(f"gc cannot tell which runs ended: {status.problem}",
                           hint="fix the bucket's settings or keys (`launcher doctor`); "
                           "`launcher teardown RUN` removes one run regardless")
        collected = set()
        for instance in run.instances:
            why = _instance_reason(status, parse_tags(instance.tags).expires_epoch, at)
            if why:
                collected.add(instance.id)
                actions.append(Action("instance", instance.id, instance.label, run.run_id,
                                      True, why))
        if len(collected) < len(run.instances):
            continue  # the run still has a live instance: its volume is in use
        for volume in run.volumes:
            if volume.label.startswith(REUSABLE_VOLUME_PREFIX):
                continue
            delete, why = _orphan_verdict(status, volume.attached_to, collected,
                                          volume_born.get(volume.id), at, force,
                                          had_instances=bool(run.instances))
            actions.append(Action("volume", volume.id, volume.label, run.run_id, delete, why,
                                  volume.attached_to))
    return actions


def _instance_reason(status: RunStatus, expires: int | None, at: float) -> str:
    if status.final:
        return f"run {status.state} (status in the bucket)"
    if expires is not None and expires <= at:
        return f"expired {duration(at - expires)} ago (tag expires:{expires})"
    return ""


def _orphan_verdict(status: RunStatus, attached_to: str | None, collected: set[str],
                    born: float | None, at: float, force: bool, *,
                    had_instances: bool) -> tuple[bool, str]:
    why = "its run's instance is collected too" if had_instances else \
        "its run has no instance left"
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

