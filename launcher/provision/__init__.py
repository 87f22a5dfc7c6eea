"""``launcher run``: provisioning as a reconcile, with failover, rollback and a dry run.

- :mod:`~launcher.provision.plan`: read-only resolution (stage, run id, snapshot, candidates
  per GPU profile, volumes, worst-case cost) -> :class:`LaunchPlan`.
- :mod:`~launcher.provision.reconcile`: the reconcile (find by tag, create only what is missing,
  fail over on capacity) -> :class:`LaunchResult`.
- :mod:`~launcher.provision.ledger`: what this launch created, and the rollback.
- :mod:`~launcher.provision.dryrun`: the same launch against recording stand-ins.
- :mod:`~launcher.provision.deps`: the injected provider, client, bucket, clock, progress.

:func:`run_stage` is the one call the CLI makes.
"""

from __future__ import annotations

from launcher.provision.deps import LaunchDeps, Progress, RecordingProgress, real_deps
from launcher.provision.dryrun import dry_run
from launcher.provision.lock import run_lock
from launcher.provision.model import (
    VOLUME_USD_PER_GB_MONTH,
    Candidate,
    CapacityExhaustedError,
    CodeBundle,
    DryRunResult,
    Estimate,
    LaunchCancelledError,
    LaunchPlan,
    LaunchRequest,
    LaunchResult,
    PlannedCall,
    RollbackIncompleteError,
    RunStateError,
    VolumePlan,
)
from launcher.provision.plan import plan_launch
from launcher.provision.preflight import prove_before_launch
from launcher.provision.reconcile import launch

__all__ = [
    "VOLUME_USD_PER_GB_MONTH", "Candidate", "CapacityExhaustedError", "CodeBundle",
    "DryRunResult", "Estimate", "LaunchCancelledError", "LaunchDeps", "LaunchPlan",
    "LaunchRequest", "LaunchResult", "PlannedCall", "Progress", "RecordingProgress",
    "RollbackIncompleteError", "RunStateError", "VolumePlan", "dry_run", "launch",
    "plan_launch", "real_deps", "run_stage",
]


def run_stage(request: LaunchRequest, deps: LaunchDeps) -> LaunchResult | DryRunResult:
    """Plan ``request``; then either the dry run, or ``deps.confirm(plan)`` and the launch.
    Nothing mutating happens before the confirmation (or at all in a dry run); before it,
    the key the instance will hold is proved with two reads (:mod:`.preflight`) and a
    refusal stops the launch (a dry run lists those reads without making them). A launch of a
    given ``--run-id`` holds that run's lock (:mod:`.lock`) from planning to the end."""
    if request.dry_run:
        return dry_run(plan_launch(request, deps), deps)
    if request.run_id:
        with run_lock(request.run_id):
            return _confirm_and_launch(plan_launch(request, deps), deps)
    plan = plan_launch(request, deps)
    with run_lock(plan.run_id):
        return _confirm_and_launch(plan, deps)


def _confirm_and_launch(plan: LaunchPlan, deps: LaunchDeps) -> LaunchResult:
    prove_before_launch(deps.account, deps.provider)  # two GETs with the instance's key
    if not deps.confirm(plan):
        raise LaunchCancelledError("not launched: the plan was declined; nothing was created")
    return launch(plan, deps)
