"""Issue 17: a stage's ``cluster`` section, ``--nodes``, and what a cluster cannot be (Vast.ai,
vGPU slices), each refused in one line naming the file (or flag) and the field."""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml

from launcher.cli import main
from launcher.config import load_stage
from launcher.config.cluster import cluster_problem
from launcher.config.model import ClusterConfig
from launcher.config.overrides import Overrides, apply_overrides
from launcher.errors import ConfigError

from .conftest import CONFIGS, write_stage

SCHEMA = json.loads((CONFIGS / "schema" / "launcher.schema.json").read_text())
STAGE = "name: x1\ncommand: [python3, train.py]\n"


def test_every_cluster_field_is_described_and_defaults_match_the_model():
    fields = SCHEMA["$defs"]["cluster"]["properties"]
    assert set(fields) == set(ClusterConfig.__dataclass_fields__)
    assert all(len(spec["description"]) > 20 for spec in fields.values())
    shipped = yaml.safe_load((CONFIGS / "launcher.yaml").read_text())["cluster"]
    assert ClusterConfig(**shipped) == ClusterConfig()
    assert load_stage(CONFIGS, "operator").cluster == ClusterConfig()


def test_a_stage_overrides_launcher_yaml_field_by_field(config_dir):
    write_stage(config_dir, "x1", STAGE + "cluster: {nodes: 3, peer_timeout_s: 20}\n")
    cluster = load_stage(config_dir, "x1").cluster
    assert cluster == ClusterConfig(nodes=3, peer_timeout_s=20.0)
    assert isinstance(cluster.peer_timeout_s, float)


@pytest.mark.parametrize(("text", "expected"), [
    ("{nodes: 0}", "field cluster.nodes: expected a number >= 1, got 0"),
    ("{nodes: two}", "field cluster.nodes: expected integer, got string"),
    ("{launch: mpirun}", "field cluster.launch: expected one of torchrun, env"),
    ("{rdzv_port: 80}", "field cluster.rdzv_port: expected a number >= 1024, got 80"),
    ("{rdzv_port: 70000}", "field cluster.rdzv_port: expected a number <= 65535, got 70000"),
    ("{peer_timeout_s: 0}", "field cluster.peer_timeout_s: expected a number > 0, got 0"),
    ("{reap_grace_s: -1}", "field cluster.reap_grace_s: expected a number >= 0, got -1"),
    ("{hosts: 2}", "field cluster.hosts: unknown field (expected one of barrier_timeout_s, "),
])
def test_a_bad_cluster_value_is_one_line_naming_file_and_field(config_dir, text, expected):
    path = write_stage(config_dir, "x1", STAGE + f"cluster: {text}\n")
    with pytest.raises(ConfigError) as raised:
        load_stage(config_dir, "x1")
    assert str(raised.value).startswith(f"{path}: {expected}"), str(raised.value)
    assert "\n" not in str(raised.value)


def test_vast_cannot_host_a_cluster(config_dir):
    defaults = config_dir / "launcher.yaml"
    defaults.write_text(defaults.read_text().replace("provider: vultr", "provider: vast"))
    path = write_stage(config_dir, "x1", STAGE + "cluster: {nodes: 2}\n")
    with pytest.raises(ConfigError) as raised:
        load_stage(config_dir, "x1")
    message = str(raised.value)
    assert message.startswith(f"{path}: field cluster.nodes: 2 nodes need a private network")
    assert "Vast.ai offers no private network between instances" in message
    write_stage(config_dir, "x1", STAGE)
    assert load_stage(config_dir, "x1").cluster.nodes == 1  # one machine: vast is fine


def test_nodes_set_in_launcher_yaml_is_blamed_on_launcher_yaml(config_dir):
    defaults = config_dir / "launcher.yaml"
    defaults.write_text(defaults.read_text().replace("provider: vultr", "provider: vast")
                        .replace("  nodes: 1\n", "  nodes: 4\n"))
    write_stage(config_dir, "x1", STAGE)
    with pytest.raises(ConfigError, match=rf"^{defaults}: field cluster.nodes: 4 nodes"):
        load_stage(config_dir, "x1")


def test_fractional_gpus_cannot_join_a_cluster(config_dir):
    path = write_stage(config_dir, "x1", STAGE + (
        "cluster: {nodes: 2}\n"
        "gpu_profiles: [{min_vram_gb: 40}, {name: slice, min_vram_gb: 8, "
        "allow_fractional: true}]\n"))
    with pytest.raises(ConfigError) as raised:
        load_stage(config_dir, "x1")
    message = str(raised.value)
    assert message.startswith(f"{path}: field cluster.nodes: 2 nodes cannot use "
                              "gpu_profiles.1 (slice), which allows fractional GPUs")
    assert "NCCL" in message and "allow_fractional: false" in message


def test_the_nodes_flag_overrides_and_is_checked_like_the_field():
    stage = load_stage(CONFIGS, "operator")
    assert apply_overrides(stage, Overrides(nodes=2)).cluster.nodes == 2
    assert apply_overrides(stage, Overrides()).cluster.nodes == 1
    with pytest.raises(ConfigError, match=r"^--nodes: expected a number >= 1, got 0$"):
        apply_overrides(stage, Overrides(nodes=0))
    vast = dataclasses.replace(stage, provider="vast")
    with pytest.raises(ConfigError, match=r"^--nodes: 3 nodes need a private network"):
        apply_overrides(vast, Overrides(nodes=3))
    assert cluster_problem(vast) == ""  # one machine on vast is fine


def test_config_show_shows_the_cluster_and_the_nodes_flag(workdir, capsys):
    argv = ["config", "show", "--stage", "operator", "--json", "--config-dir", str(CONFIGS)]
    assert main([*argv, "--nodes", "2"]) == 0
    shown = json.loads(capsys.readouterr().out)["stage"]["cluster"]
    assert shown == {"nodes": 2, "launch": "torchrun", "rdzv_port": 29400,
                     "barrier_timeout_s": 900.0, "peer_timeout_s": 60.0, "reap_grace_s": 300.0}
    assert main([*argv, "--nodes", "none"]) == 2
    assert capsys.readouterr().err == "error: --nodes: expected an integer, got 'none'\n"
