"""Launching where a machine boots an ``onstart`` script, not a cloud-init document (Vast.ai).

The same reconcile as :mod:`launcher.provision.reconcile` (the code bundle is already in the
bucket, the SSH key registered), then per candidate:

1. the run spec for a container (``placement.provider`` is the cloud's; no volume: the cache
   is a folder on the machine's own disk; the runner pins s5cmd by sha256, see
   :class:`~launcher.runner.spec.ContainerSpec`);
2. ``runner.pyz`` and ``run.json`` put at ``runs/<run_id>/boot/`` under keys named by their
   content, and presigned for reading until the run's deadline (at most a week, SigV4's
   longest);
3. the onstart rendered and checked (:mod:`launcher.render.onstart`: at most 4,096
   characters with the args, ``bash -n``/shellcheck clean);
4. the instance created from the offer with the Docker image, the onstart and the run's
   secrets as its environment, then waited for until it runs.

A capacity refusal (the offer was taken: Vast's ``no_such_ask``) moves to the next candidate;
every other failure and Ctrl-C roll back the instance this launch created (the ledger).

The presigned URLs name the B2 key id that signed them (``X-Amz-Credential``), never its
secret: the id is not a credential on its own, and the same key travels in the instance's
environment anyway, which the cloud holds just as it holds the onstart (as Vultr holds a
run's user data). Every other secret is refused in the onstart text.
"""

from __future__ import annotations

import dataclasses

from launcher.config import run_secrets
from launcher.errors import InvalidRequestError, NotFoundError
from launcher.naming import parse_tags
from launcher.operate.runs import read_status
from launcher.providers import InstanceRef
from launcher.provision.deps import BucketLike, LaunchDeps
from launcher.provision.failover import FailoverPlan
from launcher.provision.model import (
    Candidate,
    CapacityExhaustedError,
    CodeBundle,
    LaunchResult,
)
from launcher.provision.session import (
    Session,
    create_tagged,
    exhausted_message,
    is_capacity_refusal,
    offer_key,
    put_uploads,
    say_failover,
    wait_instance,
)
from launcher.render.onstart import OnstartInputs, RenderedOnstart, render, s5cmd_pin
from launcher.render.pipeline import Upload, boot_uploads
from launcher.render.stage import LaunchFacts, placeholder_facts, stage_run_spec
from launcher.runner.spec import ContainerSpec, Placement, PythonEnv, RunSpec

PRESIGN_MAX_S = 7 * 24 * 3600  # SigV4 query signing's longest validity
PRESIGN_MARGIN_S = 3600  # past the deadline: a watchdog restarted late still reads its spec
ENV_NAMES = ("B2_KEY_ID", "B2_APP_KEY", "WANDB_API_KEY")  # the container's secrets
CONTAINER_PYTHON = "python3"  # the PyTorch images' python is /opt/conda/bin/python3


@dataclasses.dataclass(frozen=True)
class Bootstrap:
    """What one candidate's instance is created with: its spec, its onstart, and its
    environment (the run's secrets: never shown)."""

    spec: RunSpec
    onstart: RenderedOnstart = dataclasses.field(repr=False)
    env: tuple[tuple[str, str], ...] = dataclasses.field(repr=False)


def place_container(session: Session, code: CodeBundle | None) -> LaunchResult:
    """Try the candidates in order until an instance is created and running."""
    plan = session.plan
    failover = FailoverPlan(c.offer for c in plan.candidates)
    by_offer = {offer_key(c.offer): c for c in plan.candidates}
    while (offer := failover.current) is not None:
        cand = by_offer[offer_key(offer)]
        boot = prepare(session, cand, code)
        try:
            instance = create_container(session, cand, boot)
        except InvalidRequestError as exc:
            if not is_capacity_refusal(exc):
                raise
            say_failover(session, offer, failover.next_after_capacity_error(offer, exc), exc)
            continue
        instance = wait_or_ended(session, instance)
        return LaunchResult(plan.run_id, cand.stage.name, cand, instance, None,
                            tuple(session.created), tuple(session.reused), code,
                            boot.spec.deadline_epoch, failover.tried, plan.notes)
    raise CapacityExhaustedError(exhausted_message(failover, by_offer), failover.tried)


def resume_container(session: Session, instance: InstanceRef) -> LaunchResult:
    """The run's instance exists: never create another; wait until it runs."""
    plan = session.plan
    session.reused.append(f"instance {instance.id} ({instance.plan}, {instance.region})")
    session.say.note(f"run {plan.run_id} already has instance {instance.id}: nothing to create")
    instance = wait_or_ended(session, instance)
    return LaunchResult(plan.run_id, plan.first.stage.name, plan.first, instance, None, (),
                        tuple(session.reused), None, parse_tags(instance.tags).expires_epoch,
                        (), plan.notes)


def wait_or_ended(session: Session, instance: InstanceRef) -> InstanceRef:
    """The instance once it runs; or, when it is gone before the launcher saw it run, its
    last look if the run's status is in the bucket: a short run can train, upload and
    destroy its machine between two looks, and that is an ended run, not a failed launch."""
    try:
        return wait_instance(session, instance)
    except NotFoundError:
        status = read_status(session.bucket, session.plan.run_id)
        if status.data is None:
            raise
    session.say.note(f"instance {instance.id} already ran and removed itself (run "
                     f"{status.state or 'status uploaded'}): see `launcher status "
                     f"{session.plan.run_id}`")
    return dataclasses.replace(instance, state="gone", ready=False, running=False)


def prepare(session: Session, cand: Candidate, code: CodeBundle | None) -> Bootstrap:
    """The spec, its boot files in the bucket (presigned), the onstart and the environment."""
    spec = container_spec(session, cand, code)
    uploads = boot_uploads(spec, session.deps.runner())
    put_uploads(session, uploads)
    secrets = dict(run_secrets(session.deps.account).values)
    onstart = render_onstart(session.bucket, spec, uploads, secrets, session.deps.now())
    boot = Bootstrap(spec, onstart, container_env(secrets))
    session.boots.append(boot)
    return boot


def render_onstart(bucket: BucketLike, spec: RunSpec, uploads: tuple[Upload, Upload],
                   secrets: dict[str, str], now: float) -> RenderedOnstart:
    """The onstart fetching ``uploads`` through URLs presigned until the run's deadline.
    Presigning is local (no request), so a trial render measures the real lengths."""
    expire = int(min(max(spec.deadline_epoch - now, 0) + PRESIGN_MARGIN_S, PRESIGN_MAX_S))
    runner_url, spec_url = (bucket.presign(f"s3://{bucket.address.bucket}/{u.key}", expire)
                            for u in uploads)
    guarded = {k: v for k, v in secrets.items() if k != "B2_KEY_ID" and v}
    return render(OnstartInputs(runner_url, uploads[0].sha256, spec_url, uploads[1].sha256,
                                api_url=spec.api_url), secrets=guarded)


def trial_onstart(cand: Candidate, deps: LaunchDeps) -> RenderedOnstart:
    """The candidate's onstart with placeholder ids but real lengths: one too long, or one
    that would carry a secret, fails before anything exists."""
    now = deps.now()
    facts = dataclasses.replace(placeholder_facts(cand.stage, now), block_id="", mount_id="",
                                api_url=deps.account.vast_api_url,
                                container=ContainerSpec(*s5cmd_pin()))
    spec = stage_run_spec(cand.stage, facts, now)
    uploads = boot_uploads(spec, deps.runner())
    secrets = dict(run_secrets(deps.account).values)
    return render_onstart(deps.bucket_for(cand.stage.storage), spec, uploads, secrets, now)


def container_spec(session: Session, cand: Candidate, code: CodeBundle | None) -> RunSpec:
    """The run spec of a container: no volume ids, the cloud's API for its own destroy."""
    plan, offer, stage = session.plan, cand.offer, cand.stage
    account, now = session.deps.account, session.deps.now()
    git_sha = (code.git_sha + ("-dirty" if code.dirty else "")) if code else \
        stage.code.git_commit
    placement = Placement(provider=stage.provider, region=offer.region, plan=offer.plan_id,
                          gpu_type=offer.gpu_type or "", gpu_count=offer.gpu_count or 0,
                          snapshot_id=plan.snapshot.id,
                          snapshot_description=plan.snapshot.description, git_sha=git_sha,
                          usd_per_hour=cand.estimate.usd_per_hour, launched_epoch=now)
    version, sha256 = s5cmd_pin()
    facts = LaunchFacts(run_id=plan.run_id, block_id="", mount_id="", placement=placement,
                        tarball_key=code.key if code else "",
                        tarball_sha256=code.sha256 if code else "",
                        api_url=account.vast_api_url,
                        storage_endpoint=account.instance_s3_endpoint,
                        hourly_cost_usd=cand.estimate.usd_per_hour,
                        wandb_key=bool(account.wandb_api_key),
                        container=ContainerSpec(s5cmd_version=version, s5cmd_sha256=sha256,
                                                apt_packages=stage.vast.apt_packages))
    spec = stage_run_spec(stage, facts, now)
    return dataclasses.replace(spec, python_env=container_python_env(spec.python_env))


def container_python_env(env: PythonEnv) -> PythonEnv:
    """The environment made with the image's own python3 when the stage names no other, and
    seeing the image's packages unless the stage says otherwise: a PyTorch image's torch
    then serves, instead of pip downloading several GB of it into every new container."""
    if env.python != PythonEnv().python:
        return env
    shared = True if env.system_site_packages is None else env.system_site_packages
    return dataclasses.replace(env, python=CONTAINER_PYTHON, system_site_packages=shared)


def container_env(secrets: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The run's secrets as the container's environment (unset ones left out; Vast's
    limits on them are checked with the create's, before anything is sent)."""
    return tuple((name, secrets[name]) for name in ENV_NAMES if secrets.get(name))


def create_container(session: Session, cand: Candidate, boot: Bootstrap) -> InstanceRef:
    """Create the instance booting ``boot`` (see :func:`create_tagged`)."""
    instance = create_tagged(session, cand, boot.spec.deadline_epoch, onstart=boot.onstart.text,
                             env=boot.env, disk_gb=cand.volume.size_gb)
    offer = cand.offer
    session.say.note(f"created instance {instance.id} (offer {offer.plan_id}: "
                     f"{offer.gpu_count} × {offer.gpu_type} in {offer.region}; onstart "
                     f"{boot.onstart.total_chars:,} of {boot.onstart.limit_chars:,} characters)")
    return instance
