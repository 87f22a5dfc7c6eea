"""Launch as a reconcile: find what the run already has, create only what is missing.

Order (each step a function below): read the run back by tag (``find_run``); an instance
already tagged is never created again, only waited for and given its volume. Otherwise:
upload the code bundle (before any Vultr create, so an unreachable bucket costs nothing),
register the stage's SSH key when the account does not have it yet (once; an account key,
never rolled back), then per candidate: the volume in its region (reused, or created), the
document rendered with the real ids (the runner and the run spec it pins uploaded to
``runs/<run_id>/boot/``), the instance created from the snapshot with the run's
tags and waited for, then the volume waited for and attached live. The volume is not waited
for before the instance is created: it becomes active while the instance boots (the document
needs only its ``mount_id``), so the launch waits out one state change, not two in a row.

Failover: a capacity refusal of the instance create moves to the next candidate; leaving a
region deletes the volume this launch created there. Every other failure, and Ctrl-C at any
point, rolls back what this launch created (see :mod:`launcher.provision.ledger`).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from launcher.config import run_secrets
from launcher.errors import InvalidRequestError
from launcher.naming import parse_tags
from launcher.providers import (
    InstanceRef,
    Provider,
    RunResources,
    VolumeRef,
    VolumeRequest,
)
from launcher.provision.deps import BucketLike, LaunchDeps
from launcher.provision.failover import FailoverPlan
from launcher.provision.ledger import Entry, Ledger, delete_until, not_ours, rollback
from launcher.provision.model import (
    ATTACH_S,
    LISTING_FRESH_S,
    VOLUME_READY_S,
    Candidate,
    CapacityExhaustedError,
    CodeBundle,
    LaunchPlan,
    LaunchResult,
    RollbackIncompleteError,
    RunStateError,
)
from launcher.provision.onstart import place_container, resume_container
from launcher.provision.preflight import check_reachable
from launcher.provision.session import (
    Session,
    create_tagged,
    exhausted_message,
    is_capacity_refusal,
    offer_key,
    put_uploads,
    say_failover,
    upload_code,
    wait_instance,
)
from launcher.provision.sshkey import ensure_ssh_key
from launcher.render import BootInputs, RenderedDocument, render
from launcher.render.stage import LaunchFacts, stage_run_spec
from launcher.runner.spec import ClusterSpec, Placement, RunSpec


def launch(plan: LaunchPlan, deps: LaunchDeps) -> LaunchResult:
    """Reconcile ``plan`` against the provider; roll back this launch's creates on failure."""
    return execute(plan, deps, deps.provider, deps.bucket_for(plan.stage.storage))[0]


def execute(plan: LaunchPlan, deps: LaunchDeps, provider: Provider, bucket: BucketLike, *,
            roll_back: bool = True) -> tuple[LaunchResult, Session]:
    """The reconcile with the given provider and bucket (real, or a dry run's stand-ins)."""
    existing = plan.existing if _fresh(plan, deps) else provider.find_run(plan.run_id)
    if _ids(existing) != _ids(plan.existing):
        raise RunStateError(f"run {plan.run_id} changed since it was planned: run the command "
                            "again")
    ledger = Ledger(plan.run_id, existing)
    with tempfile.TemporaryDirectory(prefix="launcher-run-") as tmp:
        session = Session(plan, deps, provider, bucket, ledger, Path(tmp))
        try:
            return reconcile(session), session
        except BaseException as exc:
            if not roll_back:
                raise
            remaining = rollback(ledger, deps).remaining if ledger.entries \
                else ()
            for note in ledger.kept:
                deps.progress.note(note)
            if remaining:
                raise RollbackIncompleteError(_incomplete(exc, remaining, plan), remaining,
                                              exc) from None
            raise


def _fresh(plan: LaunchPlan, deps: LaunchDeps) -> bool:
    """The plan read the run back moments ago, under the run's lock or for a new run id: no
    second look-up (two API calls) before creating."""
    return plan.listed_at is not None and deps.monotonic() - plan.listed_at <= LISTING_FRESH_S


def _ids(resources: RunResources) -> set[str]:
    return {r.id for r in (*resources.instances, *resources.volumes)}


def _incomplete(exc: BaseException, remaining: tuple[str, ...], plan: LaunchPlan) -> str:
    cause = "interrupted" if isinstance(exc, KeyboardInterrupt) else \
        (str(exc).splitlines() or [type(exc).__name__])[0]
    lines = [f"launch failed ({cause}) and the rollback could not delete everything; "
             "these may still bill:", *(f"  - {line}" for line in remaining),
             f"  or remove the run's resources with: launcher teardown {plan.run_id}"]
    return "\n".join(lines)


def reconcile(session: Session) -> LaunchResult:
    """A cloud with volumes boots a cloud-init document and gets its volume attached
    (:func:`place`); one without boots an onstart script (:mod:`launcher.provision.onstart`)."""
    volumes = session.provider.capabilities.volumes
    if session.plan.stage.cluster.nodes > 1:
        from launcher.provision.cluster import launch_cluster  # it builds on this module

        return launch_cluster(session)
    if session.ledger.before.instances:
        instance = session.ledger.before.instances[0]
        return resume_instance(session, instance) if volumes else \
            resume_container(session, instance)
    code = prepare(session)
    return place(session, code) if volumes else place_container(session, code)


def prepare(session: Session) -> CodeBundle | None:
    """Before the first create: the bucket reachable, the code bundle uploaded, the SSH key
    registered (when the account lacks it)."""
    check_reachable(session.bucket.address.endpoint_url)  # the bootstrap's files go there too
    code = upload_code(session) if session.plan.stage.code.kind == "tarball" else None
    session.ssh_key_ids = ensure_ssh_key(session.plan.ssh_key, session.provider, session.say,
                                         session.created, session.reused, session.ledger.kept)
    return code


# -- steps ----------------------------------------------------------------------------------

def place(session: Session, code: CodeBundle | None) -> LaunchResult:
    """Try the candidates in order until an instance is created, booted and attached."""
    plan = session.plan
    failover = FailoverPlan(c.offer for c in plan.candidates)
    by_offer = {offer_key(c.offer): c for c in plan.candidates}
    held: tuple[VolumeRef, Entry | None] | None = None
    while (offer := failover.current) is not None:
        cand = by_offer[offer_key(offer)]
        if held is None or held[0].region != offer.region:
            held = ensure_volume(session, cand)
        volume, entry = held
        spec, document = render_document(session, cand, volume, code, fresh=entry is not None)
        try:
            instance = create_instance(session, cand, spec, document)
        except InvalidRequestError as exc:
            if not is_capacity_refusal(exc):
                raise
            following = failover.next_after_capacity_error(offer, exc)
            say_failover(session, offer, following, exc)
            if entry is not None and (following is None or following.region != offer.region):
                drop_volume(session, volume, entry)
                held = None
            continue
        return finish(session, cand, instance, volume, code, spec, failover)
    raise CapacityExhaustedError(exhausted_message(failover, by_offer), failover.tried)


def ensure_volume(session: Session, cand: Candidate) -> tuple[VolumeRef, Entry | None]:
    """The candidate's volume, maybe not active yet (see :func:`volume_ready`): reused (no
    ledger entry), or created."""
    vp, provider = cand.volume, session.provider
    if vp.volume is not None:
        session.reused.append(f"volume {vp.volume.id} ({vp.volume.label}, {vp.region})")
        return vp.volume, None
    entry = session.ledger.sending("volume", vp.label, vp.region)
    volume = provider.create_volume(VolumeRequest(vp.region, vp.size_gb, vp.label, vp.kind))
    entry.id = volume.id
    session.created.append(f"volume {volume.id} ({vp.label}, {vp.region})")
    session.say.note(f"created volume {volume.id} ({vp.label}, {vp.size_gb} GB {vp.kind}, "
                     f"{vp.region})")
    return volume, entry


def volume_ready(session: Session, volume: VolumeRef) -> VolumeRef:
    """``volume`` once active (after the instance's boot it usually is: one look)."""
    if volume.ready:
        return volume
    with session.say.waiting(f"waiting for volume {volume.id} to become active"):
        return session.provider.wait_volume_ready(volume.id, VOLUME_READY_S)


def drop_volume(session: Session, volume: VolumeRef, entry: Entry) -> None:
    """Delete the volume this launch made in a region it is leaving (unless it turns out to be
    in another launch's use: the rollback then keeps it and says so)."""
    what = f"volume {volume.id} ({volume.label}, {volume.region})"
    session.say.note(f"leaving {volume.region}: deleting {what}")
    error = not_ours(volume.id, session.ledger.instance_ids(), session.deps) or \
        delete_until("volume", volume.id, session.deps, what)
    if error is not None:
        raise RunStateError(f"could not delete {what} before moving on: {error}")
    session.ledger.forget(entry)
    session.created.remove(f"volume {volume.id} ({volume.label}, {volume.region})")


def render_document(session: Session, cand: Candidate, volume: VolumeRef,
                    code: CodeBundle | None, *, fresh: bool, now: float | None = None,
                    cluster: ClusterSpec | None = None, nodes: int = 1,
                    deadline_epoch: float | None = None) -> tuple[RunSpec, RenderedDocument]:
    """The run spec and document with the real volume ids, placement and code; what the
    document's bootstrap fetches is in the bucket when this returns. ``fresh``: this launch
    created the volume, so the bootstrap may delete it if it gives up. ``now``: the launch
    time the deadline counts from (every node of a run shares one); ``cluster``: this
    machine's part in an N-node run, whose estimate is for all ``nodes`` machines;
    ``deadline_epoch``: the run's deadline when it has one already (a resumed N-node run)."""
    plan, offer = session.plan, cand.offer
    now = session.deps.now() if now is None else now
    stage = cand.stage
    git_sha = stage.code.git_commit
    if code is not None:
        git_sha = code.git_sha + ("-dirty" if code.dirty else "")
    placement = Placement(provider=stage.provider, region=offer.region, plan=offer.plan_id,
                          gpu_type=offer.gpu_type or "", gpu_count=offer.gpu_count or 0,
                          snapshot_id=plan.snapshot.id,
                          snapshot_description=plan.snapshot.description, git_sha=git_sha,
                          usd_per_hour=cand.estimate.usd_per_hour / nodes,
                          launched_epoch=now)
    facts = LaunchFacts(run_id=plan.run_id, block_id=volume.id, mount_id=volume.mount_id,
                        placement=placement, tarball_key=code.key if code else "",
                        tarball_sha256=code.sha256 if code else "",
                        api_url=session.deps.account.api_url_for_instance,
                        storage_endpoint=session.deps.account.instance_s3_endpoint,
                        hourly_cost_usd=cand.estimate.usd_per_hour,
                        wandb_key=bool(session.deps.account.wandb_api_key))
    spec = stage_run_spec(stage, facts, now)
    if cluster is not None:
        spec = dataclasses.replace(spec, cluster=cluster)
    if deadline_epoch is not None:
        spec = dataclasses.replace(spec, deadline_epoch=deadline_epoch)
    document = render(spec, run_secrets(session.deps.account),
                      BootInputs(session.deps.runner(), delete_volume=fresh))
    put_uploads(session, document.uploads)
    session.documents.append(document)
    return spec, document


def create_instance(session: Session, cand: Candidate, spec: RunSpec,
                    document: RenderedDocument) -> InstanceRef:
    """Create the instance booting ``document`` (see :func:`create_tagged`)."""
    instance = create_tagged(session, cand, spec.deadline_epoch,
                             user_data=document.text.encode("ascii"))
    session.say.note(f"created instance {instance.id} ({cand.offer.plan_id} in "
                     f"{cand.offer.region})")
    return instance


def finish(session: Session, cand: Candidate, instance: InstanceRef, volume: VolumeRef,
           code: CodeBundle | None, spec: RunSpec, failover: FailoverPlan) -> LaunchResult:
    instance = wait_instance(session, instance)
    volume = attach_volume(session, volume_ready(session, volume), instance)
    return LaunchResult(session.plan.run_id, cand.stage.name, cand, instance, volume,
                        tuple(session.created), tuple(session.reused), code,
                        spec.deadline_epoch, failover.tried, session.plan.notes)


def attach_volume(session: Session, volume: VolumeRef, instance: InstanceRef) -> VolumeRef:
    """Attach live (never a reboot); the provider retries a locked instance."""
    if volume.attached_to == instance.id:
        return volume
    if volume.attached_to:
        raise RunStateError(f"volume {volume.id} is attached to instance {volume.attached_to}, "
                            f"not to the run's instance {instance.id}")
    with session.say.waiting(f"attaching volume {volume.id} to instance {instance.id} (live)"):
        return session.provider.attach_volume(volume.id, instance.id, ATTACH_S)


def resume_instance(session: Session, instance: InstanceRef) -> LaunchResult:
    """The run's instance exists: never create another; wait for it and attach its volume."""
    plan = session.plan
    cand = plan.first
    if cand.volume.volume is None:
        raise RunStateError(f"run {plan.run_id} has instance {instance.id} but its volume is "
                            f"gone; remove the run with `launcher teardown {plan.run_id}` and "
                            "launch again")
    session.reused.append(f"instance {instance.id} ({instance.plan}, {instance.region})")
    volume, _ = ensure_volume(session, cand)
    session.say.note(f"run {plan.run_id} already has instance {instance.id}: nothing to create")
    instance = wait_instance(session, instance)
    volume = attach_volume(session, volume_ready(session, volume), instance)
    return LaunchResult(plan.run_id, cand.stage.name, cand, instance, volume, (),
                        tuple(session.reused), None, parse_tags(instance.tags).expires_epoch,
                        (), plan.notes)


