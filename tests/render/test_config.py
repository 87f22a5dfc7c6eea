"""configs/: the shipped files load; a bad file fails in one line naming file, field and
what was expected; a stage becomes the right RunSpec."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from launcher.config import SCHEMA_DIR, load_stage, stage_names
from launcher.errors import ConfigError
from launcher.naming import REUSABLE_VOLUME_PREFIX
from launcher.render.stage import (
    CHOSEN_AT_LAUNCH,
    CREATED_AT_LAUNCH,
    LaunchFacts,
    placeholder_facts,
    stage_run_spec,
)
from launcher.runner.spec import RunSpec

from .test_schema import walk_objects

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
NOW = 1_735_689_600.0  # 2025-01-01T00:00:00Z


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A copy of the shipped configs to break."""
    target = tmp_path / "configs"
    shutil.copytree(CONFIGS, target, ignore=shutil.ignore_patterns("schema"))
    return target


def test_the_shipped_stages_load():
    assert {"diffusion", "full", "operator", "smoke"} <= set(stage_names(CONFIGS))
    diffusion = load_stage(CONFIGS, "diffusion")
    assert diffusion.regions == ("sjc", "sea", "lax") and diffusion.gpu.min_vram_gb == 80
    assert diffusion.volume.size_gb == 1024 and diffusion.volume.block_type == "high_perf"
    assert diffusion.ups is not None and diffusion.ups.train == ("diff_residual",)
    assert diffusion.ups.train_config == "configs/train_burgers_golden.yaml"
    assert [s.dest for s in diffusion.data_sources] == ["full/burgers1d", "pdebench"]
    assert diffusion.python_env.install == ("-e", ".")
    assert diffusion.wandb.tags == ("launcher", "diffusion")
    smoke = load_stage(CONFIGS, "smoke")
    assert smoke.cpu_only and smoke.max_hours == 1 and smoke.volume.size_gb == 10


@pytest.mark.parametrize("name", ["launcher.schema.json", "stage.schema.json"])
def test_every_config_field_is_described_and_closed(name):
    schema = json.loads((SCHEMA_DIR / name).read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    undescribed = [f"{where}/{key}" for where, obj in walk_objects(schema)
                   for key, sub in obj["properties"].items() if "description" not in sub]
    open_objects = [where for where, obj in walk_objects(schema)
                    if obj.get("additionalProperties") is not False
                    and where != "#/properties/env"]
    assert undescribed == [] and open_objects == []
    both = "".join((SCHEMA_DIR / n).read_text() for n in ("launcher.schema.json",
                                                          "stage.schema.json"))
    unused = [d for d in schema.get("$defs", {}) if f"#/$defs/{d}\"" not in both]
    assert unused == []
    if "reuse_label" in schema.get("$defs", {}):  # the schema follows launcher/naming.py
        pattern = schema["$defs"]["reuse_label"]["pattern"]
        assert pattern.startswith(f"^({REUSABLE_VOLUME_PREFIX}")


@pytest.mark.parametrize(("file", "text", "expected"), [
    ("stages/diffusion.yaml",
     "name: diffusion\ncommand: [python]\ngpu_profiles: [{min_vram_gb: 8, gpu_count: two}]\n",
     "field gpu_profiles.0.gpu_count: expected integer, got string"),
    ("stages/diffusion.yaml", "name: diffusion\ncommand: [python]\ngpu_profiles: [{vram: 80}]\n",
     "field gpu_profiles.0.vram: unknown field (expected one of allow_fractional, gpu_count, "
     "gpu_model, max_gpu_count, min_vram_gb, name, overrides)"),
    ("stages/diffusion.yaml", "name: diffusion\ncommand: [python]\ngpu: {min_vram_gb: 80}\n",
     "field gpu: unknown field (expected one of "),
    ("stages/diffusion.yaml", "name: diffusion\n",
     "field command: missing (required unless the stage has an ups section)"),
    ("stages/diffusion.yaml", "name: diffusion\ncommand: [python]\nups: {train: [operator]}\n",
     "field command and ups: a stage has one or the other"),
    ("stages/diffusion.yaml", "name: diffusion\nups: {train: [diffusion]}\n",
     "field ups.train.0: expected one of operator, diff_residual"),
    ("stages/diffusion.yaml", "name: diffusion\ncommand: [x]\ndata: {sources: [{dest: a}]}\n",
     "field data.sources.0.prefix: missing (required)"),
    ("stages/diffusion.yaml", "name: diffusion\ncommand: [x]\ndata: {sources: [{prefix: p, "
     "dest: a}, {prefix: q, dest: a/b}]}\n",
     "field data.sources.1.dest: expected a folder of its own, got 'a/b' beside 'a'"),
    ("stages/diffusion.yaml", "name: diffusion\ncommand: [x]\ndata: {sources: [{prefix: p, "
     "dest: a, include: ['*.h5']}], links: {x.h5: a/y.txt}}\n",
     "field data.links.x.h5: expected a file one of the sources brings, got 'a/y.txt'"),
    ("stages/diffusion.yaml", "name: diffusion\ncommand: python train.py\n",
     "field command: expected array, got string"),
    ("stages/diffusion.yaml", "name: diffusion\ncommand: [python]\nmax_hours: 0\n",
     "field max_hours: expected a number > 0, got 0"),
    ("stages/diffusion.yaml", "name: smoke\ncommand: [python]\n",
     "field name: expected 'diffusion' (the file's name)"),
    ("stages/diffusion.yaml", "name: diffusion\ncommand: [python]\nenv: {1BAD: x}\n",
     "field env"),
    ("stages/diffusion.yaml", "name: diffusion\ncommand: [python]\ncode: {kind: git}\n",
     "field code.git_url: missing (required)"),
    ("stages/diffusion.yaml", "name: diffusion\ncommand: [python\n", "not valid YAML: line"),
    ("stages/diffusion.yaml", "", "field (top level): expected object, got null"),
    ("launcher.yaml", ("regions: [sjc, sea, lax]", "regions: sjc"),
     "field regions: expected array, got string"),
    ("launcher.yaml", ("provider: vultr", "provider: aws"),
     "field provider: expected one of vultr"),
    ("stages/diffusion.yaml", "name: diffusion\ncommand: [python]\ngpu_profiles: "
     "[{min_vram_gb: 8, gpu_count: 2, max_gpu_count: 1}]\n",
     "field gpu_profiles.0.max_gpu_count: expected at least gpu_count (2), got 1"),
    ("launcher.yaml", ("  size_gb: 1024", "  size_gb: 5"),
     "field volume.size_gb: expected a number >= 10, got 5"),
    ("launcher.yaml", ("  bucket: your-b2-bucket", "  bucket: Bad_Bucket"),
     "field storage.bucket: expected an S3 bucket name"),
])
def test_a_bad_file_names_file_field_and_expectation(config_dir, file, text, expected):
    path = config_dir / file
    if isinstance(text, tuple):
        old, new = text
        assert old in path.read_text()
        text = path.read_text().replace(old, new)
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_stage(config_dir, "diffusion")
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and expected in message, message
    assert "\n" not in message


def test_an_unknown_stage_lists_the_known_ones(config_dir):
    with pytest.raises(ConfigError,
                       match=r"no such stage \(known: diffusion, example, full, operator, "
                             r"operator-ddp, smoke\)"):
        load_stage(config_dir, "nope")


@pytest.mark.parametrize("name", ["../launcher", "UPPER", "a", "x/y", ""])
def test_a_stage_name_cannot_leave_the_stages_directory(config_dir, name):
    with pytest.raises(ConfigError, match="--stage: expected a stage name"):
        load_stage(config_dir, name)


def test_a_missing_config_directory_says_where_to_run(tmp_path):
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "x1.yaml").write_text("name: x1\ncommand: [a]\n")
    with pytest.raises(ConfigError, match="launcher.yaml: not found"):
        load_stage(tmp_path, "x1")


def test_a_stage_becomes_a_run_spec_with_marked_placeholders():
    stage = load_stage(CONFIGS, "diffusion")
    spec = stage_run_spec(stage, placeholder_facts(stage, NOW), NOW)
    assert spec.run_id == "diffusion-20250101-000000"
    assert spec.deadline_epoch == NOW + 12 * 3600
    assert spec.volume.block_id == spec.volume.mount_id == CREATED_AT_LAUNCH
    assert spec.placement.region == spec.placement.plan == CHOSEN_AT_LAUNCH
    assert spec.code.kind == "tarball" and spec.code.tarball_key == CREATED_AT_LAUNCH
    assert spec.health.min_vram_gb == 80 and not spec.health.cpu_only
    assert dict(spec.env)["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"
    assert spec.command[:2] == ("python", "scripts/run_fast_to_sota.py")
    assert spec.command[-2:][0] == "--config-override" and "logging.wandb.tags=" in spec.command[-1]
    assert RunSpec.from_json(spec.to_json()) == spec


def test_a_git_stage_and_real_launch_facts(config_dir):
    commit = "0123456789abcdef0123456789abcdef01234567"
    (config_dir / "stages" / "smoke.yaml").write_text(
        "name: smoke\ncommand: [python3, -c, pass]\ncpu_only: true\nvolume: {keep: true}\n"
        "code: {kind: git, git_url: 'https://github.com/example/t.git', "
        f"git_commit: '{commit}'}}\n")
    stage = load_stage(config_dir, "smoke")
    facts = LaunchFacts(run_id="smoke-1", block_id="blk-1", mount_id="mnt1")
    spec = stage_run_spec(stage, facts, NOW)
    assert (spec.code.kind, spec.code.git_commit) == ("git", commit)
    assert spec.volume.keep_volume and spec.health.cpu_only
    assert (spec.volume.block_id, spec.volume.mount_id) == ("blk-1", "mnt1")


@pytest.mark.parametrize(("budget", "hourly", "hours"), [
    (None, 2.5, 12.0),     # no budget: max_hours
    (10.0, 2.5, 4.0),      # the budget buys 4 h, less than the stage's 12 h
    (100.0, 2.5, 12.0),    # the budget buys 40 h: max_hours still caps it
    (10.0, None, 12.0),    # a preview knows no price yet: max_hours
])
def test_a_dollar_budget_brings_the_deadline_forward(config_dir, budget, hourly, hours):
    if budget is not None:
        stage_file = config_dir / "stages" / "diffusion.yaml"
        stage_file.write_text(stage_file.read_text() + f"max_cost_usd: {budget}\n")
    stage = load_stage(config_dir, "diffusion")
    facts = LaunchFacts(run_id="diffusion-1", block_id="b", mount_id="m",
                        hourly_cost_usd=hourly)
    assert stage_run_spec(stage, facts, NOW).deadline_epoch == NOW + hours * 3600


def test_a_budget_must_be_a_positive_number(config_dir):
    stage_file = config_dir / "stages" / "diffusion.yaml"
    stage_file.write_text(stage_file.read_text() + "max_cost_usd: -3\n")
    with pytest.raises(ConfigError, match="max_cost_usd"):
        load_stage(config_dir, "diffusion")


def test_a_stage_s_own_environment_replaces_the_ups_section_s_even_when_empty(config_dir):
    (config_dir / "stages" / "operator.yaml").write_text(
        "name: operator\nups: {train: [operator]}\npython_env: {}\n")
    stage = load_stage(config_dir, "operator")
    assert stage.python_env.install == () and stage.python_env.requires == ()
    assert [s.dest for s in stage.data_sources] == ["full/burgers1d", "pdebench"]
