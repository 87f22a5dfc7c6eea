"""Plan a launch, read-only: the stage, the run id, the snapshot, the candidates in the order
they will be tried (profile 1's offers, then profile 2's…), each with its volume and its
worst-case cost. Nothing here creates, uploads or deletes anything.
"""

from __future__ import annotations

import dataclasses

from launcher.config import GpuProfile, ImageConfig, StageConfig, resolve_stage, run_secrets
from launcher.config.view import PLACEHOLDER_BUCKET
from launcher.errors import ConfigError, NotFoundError
from launcher.naming import parse_tags, volume_label
from launcher.operate.nodes import node_status_file, read_node_statuses
from launcher.operate.runstatus import NOT_UPLOADED, read_status
from launcher.providers import ImageRef, Provider, RunResources, VolumeRef
from launcher.providers.offers import Offer, Requirement, candidates
from launcher.provision.code import require_at_head
from launcher.provision.deps import BucketLike, LaunchDeps
from launcher.provision.model import (
    Candidate,
    CapacityExhaustedError,
    Estimate,
    LaunchPlan,
    LaunchRequest,
    RunStateError,
    SnapshotChoice,
    VolumePlan,
    volume_usd_per_hour,
    volume_usd_per_month,
)
from launcher.provision.onstart import trial_onstart
from launcher.provision.sshkey import plan_ssh_key
from launcher.render import BootInputs, render
from launcher.render.stage import placeholder_facts, run_hours, run_id_for, stage_run_spec
from launcher.runner.spec import RUN_ID
from launcher.timefmt import parse_time
from launcher.training.ups import ORCHESTRATOR

# The shortest budget a launch accepts: Vultr takes minutes from create to a booted
# instance (server_status ok), and the runner fetches, syncs and checks before training.
MIN_RUN_S = 300


def plan_launch(request: LaunchRequest, deps: LaunchDeps) -> LaunchPlan:
    """Resolve everything a launch of ``request`` needs. Read-only; raises ConfigError for
    bad input, RunStateError for a resumed run that cannot be reconciled."""
    stage = resolve_stage(request.config_dir, request.stage, deps.account, request.overrides)
    stage = dataclasses.replace(stage, provider=deps.provider.name)  # --provider wins
    check_account(stage, deps)
    if stage.ups is not None and stage.code.kind == "tarball":
        require_at_head(request.code_dir, (ORCHESTRATOR, stage.ups.train_config),
                        f"stage {stage.name} runs UPS's orchestrator with that config")
    run_id = choose_run_id(request, stage, deps.now())
    if request.run_id is not None:
        check_not_ended(deps.bucket_for(stage.storage), run_id, stage.cluster.nodes)
    existing, listed_at = deps.provider.find_run(run_id), deps.monotonic()
    if request.run_id is None and not existing.empty:
        raise RunStateError(f"run {run_id} already exists (launched this very second?): "
                            f"pass --run-id {run_id} to resume it, or try again")
    check_existing(existing, stage)
    check_cluster(stage, deps.provider)
    snapshot = choose_image(deps.provider, stage)
    reusable = reusable_volumes(deps.provider, stage.volume.reuse_label, existing)
    pairs = offers_for(deps.provider, stage, existing)
    volume_for = volume_plan if deps.provider.capabilities.volumes else disk_plan
    chosen = tuple(candidate(stage, offer, profile, volume_for(stage, run_id, offer.region,
                                                               existing, reusable))
                   for offer, profile in pairs)
    if not chosen:
        raise CapacityExhaustedError(_nothing_fits(stage, existing), ())
    chosen = long_enough(chosen, stage)
    left_out: tuple[str, ...] = ()
    if not request.allow_second_volume:
        chosen, left_out = one_volume_per_label(stage, chosen, reusable)
    trial_render(chosen, deps)
    return LaunchPlan(run_id=run_id, stage=stage, snapshot=snapshot, candidates=chosen,
                      existing=existing,
                      code_dir=request.code_dir, ssh_key=plan_ssh_key(deps.provider, stage),
                      notes=left_out + notes_for(stage, chosen, reusable, deps),
                      listed_at=listed_at)


def _nothing_fits(stage: StageConfig, existing: RunResources) -> str:
    where = f"regions: {', '.join(stage.regions)}"
    if existing.volumes:
        kept = ", ".join(sorted({v.region for v in existing.volumes}))
        where = (f"only {kept}, where run {existing.run_id}'s volume is; `launcher teardown "
                 f"{existing.run_id}` or a new run id lifts that")
    return (f"no offer fits stage {stage.name} in stock now (profiles: "
            f"{', '.join(p.name for p in stage.profiles)}; {where})\nhint: launcher offers "
            f"--stage {stage.name} --all shows what was excluded and why")


def long_enough(chosen: tuple[Candidate, ...], stage: StageConfig) -> tuple[Candidate, ...]:
    """The candidates whose budget outlasts MIN_RUN_S; ConfigError when none does (a run
    that would be torn down before its instance has booted is refused, not launched)."""
    kept = tuple(c for c in chosen if c.estimate.hours * 3600 >= MIN_RUN_S)
    if kept:
        return kept
    best = max(chosen, key=lambda c: c.estimate.hours)
    minutes = best.estimate.hours * 60
    budget = (f"max_cost_usd ${stage.max_cost_usd:g} buys {minutes:.2g} minutes at "
              f"${best.estimate.usd_per_hour:.2f}/h" if best.estimate.hours < stage.max_hours
              else f"max_hours {stage.max_hours:g} is {minutes:.2g} minutes")
    raise ConfigError(f"the run would end before it could start: {budget}, and an instance "
                      f"needs minutes to boot; a run needs at least {MIN_RUN_S // 60} minutes: "
                      "raise --max-hours or --max-cost")


def trial_render(chosen: tuple[Candidate, ...], deps: LaunchDeps) -> None:
    """Render each profile's document (or onstart) once with placeholder ids, so one that
    is too big or would carry a secret in the open fails here, before anything exists."""
    secrets = run_secrets(deps.account)
    done: set[str] = set()
    for cand in chosen:
        if cand.profile.name not in done and deps.provider.capabilities.boot == "onstart":
            done.add(cand.profile.name)
            trial_onstart(cand, deps)
        elif cand.profile.name not in done:
            done.add(cand.profile.name)
            facts = dataclasses.replace(placeholder_facts(cand.stage, deps.now()),
                                        wandb_key=bool(deps.account.wandb_api_key))
            render(stage_run_spec(cand.stage, facts, deps.now()), secrets,
                   BootInputs(deps.runner(), delete_volume=True))


# -- the account and the run id ------------------------------------------------------------

def check_account(stage: StageConfig, deps: LaunchDeps) -> None:
    """The keys and the bucket a run cannot do without, named by their variables."""
    account = deps.account
    cloud, key, secret = (("Vast.ai", "VAST_API_KEY", account.vast_api_key)
                          if deps.provider.name == "vast"
                          else ("Vultr", "VULTR_KEY", account.vultr_key))
    missing = [name for name, value in ((key, secret),
                                        ("B2_APPLICATION_KEY_ID", account.b2_key_id),
                                        ("B2_APPLICATION_KEY", account.b2_key)) if not value]
    if missing:
        raise ConfigError(f"{', '.join(missing)} not set (environment or "
                          f"{account.env_file.path}): a run needs the {cloud} key to launch "
                          "and tear down, and the B2 key for its code, data and outputs")
    if stage.storage.bucket == PLACEHOLDER_BUCKET or not stage.storage.endpoint_url:
        raise ConfigError(f"storage.bucket is the placeholder {PLACEHOLDER_BUCKET!r}: set "
                          "B2_BUCKET and B2_S3_ENDPOINT, or edit configs/launcher.yaml")


def choose_run_id(request: LaunchRequest, stage: StageConfig, now: float) -> str:
    if request.run_id is None:
        return run_id_for(stage, now)
    if not RUN_ID.match(request.run_id):
        raise ConfigError(f"--run-id {request.run_id!r}: expected 3-63 characters of a-z, 0-9 "
                          "and '-', starting with a letter or digit")
    return request.run_id


def check_not_ended(bucket: BucketLike, run_id: str, nodes: int = 1) -> None:
    """A run that ended is immutable: ``--run-id`` of a run whose ``status.json`` says it
    succeeded, failed or was torn down is refused, and so is one whose status cannot be read
    (an unreadable bucket must not pass for "never started"). An N-node run writes
    ``nodes/<k>/status.json`` instead: it ended when any node's is final. Node 0's is read
    even for a one-machine stage (``--run-id`` of a cluster run without its ``--nodes``)."""
    where = bucket.address.run_url(run_id, "")
    statuses = {None: read_status(bucket, run_id),
                **read_node_statuses(bucket, run_id, range(max(nodes, 1)))}
    ended = {k: s for k, s in statuses.items() if s.final}
    if ended:
        how = ended[None].state if None in ended else ", ".join(
            f"node {k} {s.state}" for k, s in sorted(ended.items()))
        raise RunStateError(
            f"run {run_id} already ended ({how}); its outputs under {where} are kept "
            "as they are and nothing was launched: start a new run (leave out --run-id), "
            f"and see what it left with `launcher status {run_id}`")
    for k, status in statuses.items():
        if status.data is None and status.problem != NOT_UPLOADED:
            name = "status.json" if k is None else node_status_file(k)
            raise RunStateError(
                f"cannot tell whether run {run_id} already ended, so nothing was launched: "
                f"its {name} under {where}: {status.problem}")


def check_existing(existing: RunResources, stage: StageConfig) -> None:
    """A resumed run must be this stage's, with at most one instance (one per node of an
    N-node run)."""
    if len(existing.instances) > stage.cluster.nodes:
        ids = ", ".join(i.id for i in existing.instances)
        raise RunStateError(f"run {existing.run_id} has {len(existing.instances)} instances "
                            f"({ids}): remove them with `launcher teardown {existing.run_id}`")
    for instance in existing.instances:
        tagged = parse_tags(instance.tags).stage
        if tagged and tagged != stage.name:
            raise RunStateError(f"run {existing.run_id} is a {tagged} run, not {stage.name}")


def check_cluster(stage: StageConfig, provider: Provider) -> None:
    """An N-node run needs a private network and volumes, and one volume per node: a
    reusable volume (``volume.reuse_label``) cannot serve several machines."""
    nodes = stage.cluster.nodes
    if nodes < 2:
        return
    if not (provider.capabilities.private_network and provider.capabilities.volumes):
        raise ConfigError(f"cluster.nodes {nodes}: {provider.title} gives its instances no "
                          "private network and volumes here; an N-node run needs both (run "
                          "it on Vultr, or with cluster.nodes 1)")
    if stage.volume.reuse_label:
        raise ConfigError(f"cluster.nodes {nodes} with volume.reuse_label "
                          f"{stage.volume.reuse_label!r}: each node gets a volume of its own, "
                          "and one reusable volume cannot be attached to several machines; "
                          "leave reuse_label empty (--reuse-volume '') for an N-node run")


# -- the image -------------------------------------------------------------------------------

def choose_image(provider: Provider, stage: StageConfig) -> SnapshotChoice:
    """What the instance boots: a snapshot of the account, or a cloud's Docker image."""
    if provider.capabilities.images == "docker":
        return SnapshotChoice(stage.vast.image, "Docker image", "", "the stage's vast.image")
    return choose_snapshot(provider, stage.image)


def choose_snapshot(provider: Provider, image: ImageConfig) -> SnapshotChoice:
    """``latest``: the newest complete snapshot described ``<snapshot_prefix>…``; an id: that
    snapshot, which must exist and be complete. Raises ConfigError saying what to do."""
    if not image.wants_latest:
        try:
            snap = provider.get_image(image.snapshot)
        except NotFoundError:
            raise ConfigError(f"image.snapshot {image.snapshot}: no such snapshot in this "
                              "account") from None
        if not snap.complete:
            raise ConfigError(f"image.snapshot {snap.id} ({snap.description}) is {snap.status},"
                              " not complete: wait for it, or use another")
        return SnapshotChoice(snap.id, snap.description, snap.created, "pinned by id")
    named = [s for s in provider.list_images()
             if s.description.startswith(image.snapshot_prefix)]
    done = [s for s in named if s.complete]
    if not done:
        pending = f" ({len(named)} not complete yet)" if named else ""
        raise ConfigError(f"no complete snapshot described {image.snapshot_prefix}…{pending}: "
                          "bake one, or set image.snapshot (--snapshot ID)")
    newest = max(done, key=snapshot_created_key)
    return SnapshotChoice(newest.id, newest.description, newest.created,
                          f"newest complete of {len(done)} described {image.snapshot_prefix}…")


def snapshot_created_key(snap: ImageRef) -> tuple[float, str]:
    """Sort key of snapshots by creation (then id); an unreadable date sorts oldest."""
    return parse_time(snap.created) or 0.0, snap.id


# -- offers and volumes ----------------------------------------------------------------------

def offers_for(provider: Provider, stage: StageConfig,
               existing: RunResources) -> list[tuple[Offer, GpuProfile]]:
    """Each profile's candidates in launch order, profile after profile, each offer once.
    A resumed run stays where its instance or volume already is."""
    if existing.instances:
        return [_offer_of_instance(provider, stage, existing)]
    regions = {v.region for v in existing.volumes}
    seen: set[tuple[str, str]] = set()
    pairs = []
    for profile in stage.profiles:
        requirement = Requirement.from_config(stage, profile)
        for offer in candidates(provider.rank_offers(requirement, list_excluded=False)):
            key = (offer.plan_id, offer.region)
            if key not in seen and (not regions or offer.region in regions):
                seen.add(key)
                pairs.append((offer, profile))
    return pairs


def _offer_of_instance(provider: Provider, stage: StageConfig,
                       existing: RunResources) -> tuple[Offer, GpuProfile]:
    """The offer a resumed run's instance already holds (stock no longer matters)."""
    instance = existing.instances[0]
    for profile in stage.profiles:
        requirement = Requirement.from_config(stage, profile, regions=(instance.region,))
        for verdict in provider.rank_offers(requirement, list_excluded=False).verdicts:
            if (verdict.offer.plan_id, verdict.offer.region) == (instance.plan, instance.region):
                return verdict.offer, profile
    raise RunStateError(f"run {existing.run_id}'s instance {instance.id} runs plan "
                        f"{instance.plan} in {instance.region}, which Vultr no longer lists")


def reusable_volumes(provider: Provider, label: str,
                     existing: RunResources) -> tuple[VolumeRef, ...]:
    """The volumes labelled ``label`` (none when it is ""), at most one per region, none of
    them in use by another run."""
    if not label:
        return ()
    found = provider.find_volumes(label)
    ours = {i.id for i in existing.instances}
    for volume in found:
        if volume.attached_to and volume.attached_to not in ours:
            raise ConfigError(f"volume {label} ({volume.id}, {volume.region}) is attached to "
                              f"instance {volume.attached_to}: another run is using it; wait "
                              "for it to end or choose another --reuse-volume")
    regions = [v.region for v in found]
    doubled = sorted({r for r in regions if regions.count(r) > 1})
    if doubled:
        raise ConfigError(f"more than one volume is labelled {label} in {', '.join(doubled)}: "
                          "relabel or delete the extra ones")
    return found


def volume_plan(stage: StageConfig, run_id: str, region: str, existing: RunResources,
                reusable: tuple[VolumeRef, ...]) -> VolumePlan:
    """The run's own volume in ``region`` if it exists; else the reusable volume there; else
    a new one: labelled ``reuse_label`` when one is configured (so the next run finds it),
    ``<run_id>-cache`` otherwise."""
    v = stage.volume
    mine = [vol for vol in (*existing.volumes, *reusable) if vol.region == region]
    attached = [vol for vol in mine if vol.attached_to]  # to this run's instance
    nodes = stage.cluster.nodes
    if nodes > 1:  # display only: the cluster's launch finds or makes each node's volume
        return VolumePlan("create", region, f"{run_id}-node<k>-cache for k in 0..{nodes - 1}",
                          v.size_gb, v.block_type)
    if mine:
        volume = (attached or mine)[0]
        return VolumePlan("reuse", region, volume.label, volume.size_gb, v.block_type, volume)
    return VolumePlan("create", region, v.reuse_label or volume_label(run_id), v.size_gb,
                      v.block_type)


def disk_plan(stage: StageConfig, run_id: str, region: str, existing: RunResources,
              reusable: tuple[VolumeRef, ...]) -> VolumePlan:
    """A cloud without volumes: the machine's own disk (``vast.disk_gb``) is the cache."""
    return VolumePlan("disk", region, "", int(stage.vast.disk_gb), "container")


def one_volume_per_label(stage: StageConfig, chosen: tuple[Candidate, ...],
                         reusable: tuple[VolumeRef, ...]
                         ) -> tuple[tuple[Candidate, ...], tuple[str, ...]]:
    """The candidates that reuse the volume labelled ``reuse_label`` where one exists, and a
    note naming those left out (they would create a second one, billed on its own and kept
    for good); ConfigError when none is left. Unchanged when no such volume exists."""
    label = stage.volume.reuse_label
    kept = tuple(c for c in chosen if c.volume.action == "reuse")
    left_out = sorted({c.offer.region for c in chosen} - {c.offer.region for c in kept})
    if not (label and reusable and left_out):
        return chosen, ()
    regions = ",".join(sorted({v.region for v in reusable}))
    cost = volume_usd_per_month(stage.volume.size_gb, stage.volume.block_type)
    second = (f"a second {label} ({stage.volume.size_gb} GB, ${cost:,.2f}/month, kept after "
              "the run)")
    if not kept:
        where = ", ".join(f"{v.id} in {v.region} ({v.size_gb} GB)" for v in reusable)
        raise ConfigError(
            f"volume {label} exists ({where}), but no offer fits there now; launching in "
            f"{', '.join(left_out)} would create {second}: pass --regions {regions} to wait "
            "for that region, or --allow-second-volume to create another one")
    return kept, (f"{label} exists in {regions}: candidates in {', '.join(left_out)} are "
                  f"left out, as they would create {second}; --allow-second-volume allows "
                  "it",)


def candidate(stage: StageConfig, offer: Offer, profile: GpuProfile,
              volume: VolumePlan) -> Candidate:
    """The offer as a candidate; its estimate is for every node of an N-node run."""
    launched = stage.for_profile(profile)
    nodes = stage.cluster.nodes
    volume_cost = 0.0 if volume.action == "disk" else volume_usd_per_hour(volume.size_gb,
                                                                           volume.kind)
    hours = run_hours(launched, nodes * (offer.price_per_hour + volume_cost))
    return Candidate(offer, profile, launched, volume,
                     Estimate(nodes * offer.price_per_hour, nodes * volume_cost, hours))


# -- notes -----------------------------------------------------------------------------------

def notes_for(stage: StageConfig, chosen: tuple[Candidate, ...],
              reusable: tuple[VolumeRef, ...], deps: LaunchDeps) -> tuple[str, ...]:
    notes = []
    first = chosen[0]
    if stage.volume.reuse_label and first.volume.action == "create" and reusable:
        where = ", ".join(sorted(v.region for v in reusable))
        notes.append(f"{stage.volume.reuse_label} exists in {where}, not in "
                     f"{first.offer.region}: a new one is created there (--regions {where} "
                     "would reuse it)")
    if not deps.account.wandb_api_key and stage.wandb.mode == "online":
        notes.append("WANDB_API_KEY is not set: W&B is off for this run (UPS cannot log "
                     "offline)" if stage.ups else
                     "WANDB_API_KEY is not set: the run logs to W&B offline")
    return tuple(notes)
