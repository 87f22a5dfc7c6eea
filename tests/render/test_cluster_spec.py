"""Issue 17: what ``stage_run_spec`` makes of a stage's cluster section and its GPU count: node
k's :class:`ClusterSpec` (one torchrun process per GPU of the machine), none for one machine,
and a preview of a cluster stage that renders (node 0's document)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from launcher.config import load_stage
from launcher.config.model import ClusterConfig
from launcher.render import BootInputs, render
from launcher.render.stage import (
    CHOSEN_AT_LAUNCH,
    LaunchFacts,
    placeholder_facts,
    stage_run_spec,
)
from launcher.runner.spec import ClusterSpec, Placement, RunSpec

from .conftest import fake_secrets, tiny_runner

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
NOW = 1_735_689_600.0


def cluster_stage(name: str = "operator", **cluster):
    stage = load_stage(CONFIGS, name)
    return dataclasses.replace(stage, cluster=ClusterConfig(**{"nodes": 2, **cluster}))


def test_node_k_gets_its_cluster_spec_with_one_process_per_gpu():
    stage = cluster_stage(launch="env", rdzv_port=29500, peer_timeout_s=15.0)
    facts = LaunchFacts(run_id="operator-1", block_id="b", mount_id="m", node_index=1,
                        network_id="vpc-1", placement=Placement(plan="p", gpu_count=4))
    spec = stage_run_spec(stage, facts, NOW)
    assert spec.cluster == ClusterSpec(nodes=2, node_index=1, launch="env", nproc_per_node=4,
                                       rdzv_port=29500, barrier_timeout_s=900.0,
                                       peer_timeout_s=15.0, reap_grace_s=300.0,
                                       network_id="vpc-1")
    assert spec.run_prefix == "runs/operator-1/nodes/1"
    assert "training.num_gpus=4" in spec.command
    assert RunSpec.from_json(spec.to_json()) == spec


def test_one_machine_has_no_cluster_even_with_a_node_index():
    facts = LaunchFacts(run_id="operator-1", block_id="b", mount_id="m", node_index=0)
    spec = stage_run_spec(load_stage(CONFIGS, "operator"), facts, NOW)
    assert spec.cluster is None and spec.run_prefix == "runs/operator-1"
    assert "training.num_gpus=1" in spec.command  # the profile's count: no offer known


def test_a_cluster_stage_previews_as_node_0_and_renders():
    stage = cluster_stage("smoke")
    facts = placeholder_facts(stage, NOW)
    assert (facts.node_index, facts.network_id) == (0, CHOSEN_AT_LAUNCH)
    spec = stage_run_spec(stage, facts, NOW)
    assert spec.cluster is not None and spec.cluster.node_index == 0
    assert spec.cluster.nproc_per_node == 1
    document = render(spec, fake_secrets(), BootInputs(tiny_runner(), delete_volume=True))
    assert document.text.startswith("#cloud-config")
    assert placeholder_facts(load_stage(CONFIGS, "smoke"), NOW).node_index is None


def test_the_shipped_ddp_stage_asks_for_exactly_two_gpus_and_passes_them():
    stage = load_stage(CONFIGS, "operator-ddp")
    assert (stage.gpu.gpu_count, stage.gpu.max_gpu_count) == (2, 0)
    assert stage.ups is not None
    assert stage.ups.train_config == "configs/train_burgers_upt_full_ddp.yaml"
    spec = stage_run_spec(stage, placeholder_facts(stage, NOW), NOW)
    assert [a for a in spec.command if a.startswith("training.num_gpus=")] == \
        ["training.num_gpus=2"]
    assert spec.health.min_gpus == 2
