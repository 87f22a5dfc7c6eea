"""A stage's ``cluster`` section: how many machines one run uses, read and checked.

``launcher.yaml``'s ``cluster`` section is every stage's default; a stage's own is laid over
it field by field, and ``--nodes`` over both. :func:`cluster_problem` says why a cluster of
``nodes`` > 1 cannot work for a stage, so the loader, the overrides and a launch that
changes the provider refuse it with one rule and in the same words.
"""

from __future__ import annotations

from typing import Any

from launcher.config.model import ClusterConfig, StageConfig
from launcher.errors import ConfigError

# Why each provider that cannot host a cluster cannot (the other providers can).
NO_PRIVATE_NETWORK = {
    "vast": "Vast.ai offers no private network between instances, and torchrun's "
            "rendezvous and NCCL traffic must not cross the public internet: use provider "
            "vultr (its VPC joins the nodes), or nodes: 1",
}
# NVIDIA's vGPU documentation ("Peer-To-Peer (P2P) CUDA Transfers") supports peer-to-peer
# transfers only for time-sliced vGPUs that hold a whole card's memory.
FRACTIONAL = ("a vGPU slice is a time share of a card that other machines use too, and "
              "NVIDIA's vGPU supports the peer-to-peer transfers NCCL relies on only for a "
              "vGPU holding a whole card: every step of the run would wait on the slowest, "
              "shared slice")


def read_cluster(defaults: dict[str, Any], stage: dict[str, Any]) -> ClusterConfig:
    """The stage's ``cluster`` section over ``launcher.yaml``'s (both already valid)."""
    merged = {**defaults.get("cluster", {}), **stage.get("cluster", {})}
    for name in ("barrier_timeout_s", "peer_timeout_s", "reap_grace_s"):
        if name in merged:
            merged[name] = float(merged[name])
    return ClusterConfig(**merged)


def cluster_source(defaults: dict[str, Any], stage: dict[str, Any],
                   files: tuple[str, str]) -> str:
    """The file ``cluster.nodes`` came from, for messages: the stage's when it sets it."""
    defaults_file, stage_file = files
    return stage_file if "nodes" in stage.get("cluster", {}) else defaults_file


def cluster_problem(stage: StageConfig) -> str:
    """Why ``stage`` cannot run as a cluster of ``stage.cluster.nodes`` machines ("": it
    can, or it is one machine). Checked on the provider the stage names and on every GPU
    profile (a fallback profile can be the one launched)."""
    nodes = stage.cluster.nodes
    if nodes <= 1:
        return ""
    if stage.provider in NO_PRIVATE_NETWORK:
        return f"{nodes} nodes need a private network between them: " \
               f"{NO_PRIVATE_NETWORK[stage.provider]}"
    for index, profile in enumerate(stage.profiles):
        if profile.allow_fractional:
            return (f"{nodes} nodes cannot use gpu_profiles.{index} ({profile.name}), which "
                    f"allows fractional GPUs: {FRACTIONAL}; set allow_fractional: false "
                    "there, or nodes: 1")
    return ""


def check_cluster(stage: StageConfig, where: str) -> None:
    """Raise ConfigError ``<where>: <why>`` when :func:`cluster_problem` finds a problem;
    ``where`` names what set it (``<file>: field cluster.nodes``, ``--nodes``)."""
    problem = cluster_problem(stage)
    if problem:
        raise ConfigError(f"{where}: {problem}")
