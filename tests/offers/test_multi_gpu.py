"""Issue 17: one machine with many GPUs. Against the emulator's catalogue, through the ranking a
launch uses (``plan.offers_for``: each profile's ``Requirement``, the provider's ranking, then
``candidates``), a stage asking for 8 GPUs lands on the 8-GPU node and a 1-GPU stage never does
unless ``max_gpu_count`` admits it; the UPS command carries the chosen plan's GPU count."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from conftest import client_for

from launcher.config import load_stage
from launcher.config.model import GpuProfile, StageConfig
from launcher.providers import RunResources
from launcher.providers.vultr import VultrProvider
from launcher.provision.plan import offers_for
from launcher.render.stage import LaunchFacts, gpu_count, stage_run_spec
from launcher.runner.spec import Placement

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
H100_NODE = "vcg-h100-8x-224c-2048g-640vram"
NOW = 1_735_689_600.0


@pytest.fixture
def provider(emulator):
    with client_for(emulator.url) as client:
        yield VultrProvider(client)


def stage_with(name: str, *profiles: GpuProfile, regions=("sjc", "sea", "ewr")) -> StageConfig:
    return dataclasses.replace(load_stage(CONFIGS, name), profiles=profiles, regions=regions)


def ranked(provider, stage: StageConfig) -> list[tuple[str, str, int]]:
    pairs = offers_for(provider, stage, RunResources(run_id="x-1"))
    return [(o.plan_id, o.region, o.gpu_count or 0) for o, _ in pairs]


def launched_command(stage: StageConfig, offer_gpus: int) -> tuple[str, ...]:
    """The command a launch on an offer with ``offer_gpus`` GPUs renders (as reconcile's
    placement records the offer's count)."""
    placement = Placement(region="sea", plan=H100_NODE, gpu_type="NVIDIA_H100",
                          gpu_count=offer_gpus)
    facts = LaunchFacts(run_id="operator-1", block_id="b", mount_id="m", placement=placement)
    return stage_run_spec(stage.for_profile(stage.gpu), facts, NOW).command


def num_gpus(command: tuple[str, ...]) -> list[str]:
    return [arg for arg in command if arg.startswith("training.num_gpus=")]


def test_a_stage_asking_for_8_gpus_gets_the_8_gpu_node_and_nothing_smaller(provider):
    stage = stage_with("operator", GpuProfile(min_vram_gb=80, gpu_count=8))
    offers = ranked(provider, stage)
    assert offers, "the 8 x H100 node fits 8 GPUs of 80 GB"
    assert {count for _, _, count in offers} == {8}
    assert (H100_NODE, "sea") in [(plan, region) for plan, region, _ in offers]
    first = next(o for o, _ in offers_for(provider, stage, RunResources(run_id="x-1")))
    command = launched_command(stage, first.gpu_count or 0)
    assert num_gpus(command) == ["training.num_gpus=8"]
    # before the run's own launch flags, after the stage's: the machine's count wins
    assert command.index("training.num_gpus=8") < command.index("--run-id")


def test_a_1_gpu_stage_never_lands_on_the_8_gpu_node(provider):
    stage = stage_with("operator", GpuProfile(min_vram_gb=40))
    offers = ranked(provider, stage)
    assert offers and all(count == 1 for _, _, count in offers)
    assert H100_NODE not in {plan for plan, _, _ in offers}


def test_max_gpu_count_admits_the_bigger_node_and_num_gpus_follows_the_machine(provider):
    stage = stage_with("operator", GpuProfile(min_vram_gb=80, max_gpu_count=8),
                       regions=("sea",))
    offers = ranked(provider, stage)
    assert (H100_NODE, "sea", 8) in offers
    assert {count for _, _, count in offers} == {1, 8}
    assert num_gpus(launched_command(stage, 8)) == ["training.num_gpus=8"]
    assert num_gpus(launched_command(stage, 1)) == ["training.num_gpus=1"]


def test_an_unknown_offer_count_falls_back_to_the_profile(provider):
    stage = stage_with("operator", GpuProfile(min_vram_gb=80, gpu_count=2))
    assert gpu_count(stage, Placement()) == 2
    assert num_gpus(launched_command(stage, 0)) == ["training.num_gpus=2"]


def test_a_profile_that_sets_num_gpus_itself_is_overruled_by_the_machine():
    stage = load_stage(CONFIGS, "operator")
    mine = dataclasses.replace(stage.gpu, overrides=dataclasses.replace(
        stage.gpu.overrides, args=("--config-override", "training.num_gpus=4")))
    stage = dataclasses.replace(stage, profiles=(mine,))
    command = launched_command(stage, 1)
    assert num_gpus(command) == ["training.num_gpus=4", "training.num_gpus=1"]
    assert command.index("training.num_gpus=1") > command.index("training.num_gpus=4")


def test_a_command_stage_gets_no_ups_override():
    stage = load_stage(CONFIGS, "smoke")
    assert num_gpus(launched_command(stage, 8)) == []
