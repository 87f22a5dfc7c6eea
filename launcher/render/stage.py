"""A checked stage plus what only a launch knows -> the :class:`RunSpec` the instance gets.

``launcher run`` fills :class:`LaunchFacts` with the created volume, the chosen offer and
the uploaded code; ``launcher render`` uses :func:`placeholder_facts`, whose values are
marked ``<created-at-launch>`` / ``<chosen-at-launch>`` so nobody mistakes them for real ones.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

from launcher.config import StageConfig
from launcher.runner.spec import (
    ClusterSpec,
    CodeSource,
    ContainerSpec,
    HealthSpec,
    Placement,
    RunSpec,
    Storage,
    VolumeSpec,
    WandbSpec,
)
from launcher.runner.train import wandb_tags
from launcher.training import ups

CREATED_AT_LAUNCH = "<created-at-launch>"
CHOSEN_AT_LAUNCH = "<chosen-at-launch>"
DEFAULT_API_URL = "https://api.vultr.com/v2"


@dataclass(frozen=True)
class LaunchFacts:
    """What a launch learns before it creates the instance."""

    run_id: str
    block_id: str
    mount_id: str
    placement: Placement = field(default_factory=Placement)
    tarball_key: str = ""
    tarball_sha256: str = ""
    # The Vultr API URL and the S3 endpoint the instance uses ("": the stage's endpoint);
    # they differ from the launcher's only for an emulator whose machines are VMs.
    api_url: str = DEFAULT_API_URL
    storage_endpoint: str = ""
    # What the run costs per hour (plan + volume), when known: it turns a dollar budget
    # into hours.
    hourly_cost_usd: float | None = None
    # Whether the instance gets a W&B key: without one an online run logs offline.
    wandb_key: bool = False
    # Container mode (placement.provider "vast"): what the runner needs without systemd.
    container: ContainerSpec = field(default_factory=ContainerSpec)
    # Node k of an N-node run (the stage's cluster.nodes > 1) and the private network its
    # nodes share; None for a run of one machine.
    node_index: int | None = None
    network_id: str = ""


def run_hours(stage: StageConfig, hourly_cost_usd: float | None) -> float:
    """How long the run may last: ``max_hours``, or less when ``max_cost_usd`` buys less at
    ``hourly_cost_usd``. Without a price (a preview) the budget cannot apply yet."""
    hours = stage.max_hours
    if stage.max_cost_usd is not None and hourly_cost_usd:
        hours = min(hours, stage.max_cost_usd / hourly_cost_usd)
    return hours


def run_id_for(stage: StageConfig, now: float) -> str:
    """``<stage>-<UTC yyyymmdd-hhmmss>``: unique per second, sortable, a valid run id."""
    return f"{stage.name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}"


def placeholder_facts(stage: StageConfig, now: float) -> LaunchFacts:
    """Facts for a preview: nothing is created, so ids and the offer are marked placeholders."""
    placement = Placement(provider=stage.provider, region=CHOSEN_AT_LAUNCH,
                          plan=CHOSEN_AT_LAUNCH, gpu_type=CHOSEN_AT_LAUNCH,
                          snapshot_id=CHOSEN_AT_LAUNCH, snapshot_description=CHOSEN_AT_LAUNCH,
                          git_sha=CREATED_AT_LAUNCH)
    tarball = stage.code.kind == "tarball"
    cluster = stage.cluster.nodes > 1  # node 0's spec: the one that hosts the rendezvous
    return LaunchFacts(run_id=run_id_for(stage, now), block_id=CREATED_AT_LAUNCH,
                       mount_id=CREATED_AT_LAUNCH, placement=placement,
                       tarball_key=CREATED_AT_LAUNCH if tarball else "",
                       tarball_sha256=CREATED_AT_LAUNCH if tarball else "",
                       node_index=0 if cluster else None,
                       network_id=CHOSEN_AT_LAUNCH if cluster else "")


def gpu_count(stage: StageConfig, placement: Placement) -> int:
    """The GPUs the command gets on its machine: the chosen offer's
    (``placement.gpu_count``) when known, else the launched profile's ``gpu_count``."""
    return placement.gpu_count if placement.gpu_count > 0 else stage.gpu.gpu_count


def cluster_spec(stage: StageConfig, facts: LaunchFacts) -> ClusterSpec | None:
    """Node ``facts.node_index``'s part in the run (None for one machine): the stage's
    ``cluster`` settings, one torchrun process per GPU of the machine."""
    c = stage.cluster
    if c.nodes <= 1 or facts.node_index is None:
        return None
    return ClusterSpec(nodes=c.nodes, node_index=facts.node_index, launch=c.launch,
                       nproc_per_node=gpu_count(stage, facts.placement),
                       rdzv_port=c.rdzv_port, barrier_timeout_s=c.barrier_timeout_s,
                       peer_timeout_s=c.peer_timeout_s, reap_grace_s=c.reap_grace_s,
                       network_id=facts.network_id)


def stage_run_spec(stage: StageConfig, facts: LaunchFacts, now: float) -> RunSpec:
    """The run spec for ``stage``; the deadline is ``now`` plus :func:`run_hours`. The health
    thresholds are ``stage.gpu``'s: pass ``stage.for_profile(chosen)`` for a fallback. A UPS
    stage's command gets ``training.num_gpus`` = :func:`gpu_count`; with ``facts.node_index``
    set (and ``stage.cluster.nodes`` > 1) the spec is that node's (:func:`cluster_spec`)."""
    s, v, g = stage.storage, stage.volume, stage.gpu
    spec = RunSpec(
        run_id=facts.run_id, stage=stage.name, command=stage.command,
        code=code_source(stage, facts),
        storage=Storage(endpoint_url=facts.storage_endpoint or s.endpoint_url, bucket=s.bucket,
                        data_prefix=s.data_prefix, runs_prefix=s.runs_prefix, region=s.region),
        volume=VolumeSpec(block_id=facts.block_id, mount_id=facts.mount_id,
                          mount_point=v.mount_point, fs_type=v.fs_type, keep_volume=v.keep,
                          device_wait_s=v.device_wait_s),
        deadline_epoch=float(int(now + run_hours(stage, facts.hourly_cost_usd) * 3600)),
        workdir=stage.workdir, placement=facts.placement,
        health=HealthSpec(cpu_only=stage.cpu_only, min_gpus=g.gpu_count,
                          min_vram_gb=g.min_vram_gb, gpu_model=g.gpu_model,
                          min_disk_mb_s=stage.min_disk_mb_s, matmul=stage.matmul,
                          vgpu_driver=stage.image.supports_vgpu),
        wandb=WandbSpec(project=stage.wandb.project, entity=stage.wandb.entity,
                        mode=stage.wandb.mode, tags=stage.wandb.tags),
        env=stage.env, upload_dirs=stage.upload_dirs, heartbeat_s=stage.heartbeat_s,
        api_url=facts.api_url, data_sources=stage.data_sources, data_links=stage.data_links,
        python_env=stage.python_env, code_links=stage.ups.code_links if stage.ups else (),
        container=facts.container, cluster=cluster_spec(stage, facts))
    if stage.ups is None:
        return spec
    mode = wandb_mode(stage.wandb.mode, facts.wandb_key)
    # After the profile's overrides (in stage.command): the machine's count wins.
    extra = ups.gpu_args(gpu_count(stage, facts.placement)) + ups.launch_args(
        spec.run_id, stage.wandb.project, stage.wandb.entity, wandb_tags(spec), mode,
        facts.wandb_key)
    # UPS cannot log offline (launcher/training/ups.py): off is what the trainer gets then.
    logged = spec.wandb if mode == "online" else dataclasses.replace(spec.wandb,
                                                                      mode="disabled")
    return dataclasses.replace(spec, command=(*spec.command, *extra), wandb=logged)


def code_source(stage: StageConfig, facts: LaunchFacts) -> CodeSource:
    """Git at the stage's pinned commit, or the bundle the launch uploaded."""
    if stage.code.kind == "git":
        return CodeSource(kind="git", git_url=stage.code.git_url,
                          git_commit=stage.code.git_commit)
    return CodeSource(kind="tarball", tarball_key=facts.tarball_key, sha256=facts.tarball_sha256)


def wandb_mode(configured: str, key_set: bool) -> str:
    """The W&B mode the run gets: ``online`` without a key becomes ``offline``."""
    mode = configured or "online"
    return "offline" if mode == "online" and not key_set else mode
