"""The shipped stages and the configuration model: profiles in order, the preferred one as
``StageConfig.gpu``, volumes, images, access, and one-line errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.config import load_stage, stage_names
from launcher.errors import ConfigError
from launcher.naming import REUSABLE_VOLUME_PREFIX
from launcher.render.stage import placeholder_facts, stage_run_spec

from .conftest import CONFIGS, write_stage

NOW = 1_735_689_600.0
SNAPSHOT_ID = "5f0d2c1e-8a3b-4c6d-9e7f-0a1b2c3d4e5f"


@pytest.mark.parametrize("name", stage_names(CONFIGS))
def test_every_shipped_stage_loads_and_makes_a_run_spec(name):
    stage = load_stage(CONFIGS, name)
    assert stage.name == name and stage.profiles and stage.gpu is stage.profiles[0]
    for profile in stage.profiles:
        spec = stage_run_spec(stage.for_profile(profile), placeholder_facts(stage, NOW), NOW)
        assert spec.health.min_vram_gb == profile.min_vram_gb
        assert spec.command[:len(stage.command)] == stage.command


def test_the_shipped_set_and_its_defaults():
    assert {"operator", "diffusion", "full", "smoke"} <= set(stage_names(CONFIGS))
    full = load_stage(CONFIGS, "full")
    assert full.regions == ("sjc", "sea", "lax")
    assert (full.volume.size_gb, full.volume.block_type, full.volume.keep) == \
        (1024, "high_perf", False)
    assert full.volume.reuse_label == "" and full.image.wants_latest
    assert not full.image.supports_vgpu and full.snapshot_prefix == "launcher-gpu-"
    assert full.max_price_per_hour is None and full.access.ssh_public_key == ""
    assert load_stage(CONFIGS, "smoke").cpu_only


@pytest.mark.parametrize("name", ["operator", "diffusion", "full"])
def test_training_stages_write_where_the_runner_uploads_from(name):
    """argv is never expanded, so the training stages spell the runner's directories out;
    they must stay under the volume's mount point and in the uploaded folders."""
    stage = load_stage(CONFIGS, name)
    assert not any("$" in arg for arg in stage.command)
    paths = [part for arg in stage.command for part in arg.split("=") if part.startswith("/")]
    assert paths and all(p.startswith(stage.volume.mount_point + "/") for p in paths)
    folders = {Path(p).relative_to(stage.volume.mount_point).parts[0] for p in paths}
    assert folders <= set(stage.upload_dirs)
    assert stage.command[:2] == ("python", "scripts/run_fast_to_sota.py")


def test_the_full_stage_runs_the_whole_pipeline():
    command = load_stage(CONFIGS, "full").command
    assert command[command.index("--train-stage") + 1] == "all"


def test_profiles_keep_their_order_and_the_first_is_gpu(config_dir):
    write_stage(config_dir, "x1", """name: x1
command: [python, train.py]
env: {A: stage, B: stage}
gpu_profiles:
  - {name: big, min_vram_gb: 80, gpu_count: 2, gpu_model: H100}
  - {min_vram_gb: 48}
  - min_vram_gb: 24
    allow_fractional: true
    overrides: {args: [--batch-size, "8"], env: {B: profile, C: profile}}
""")
    stage = load_stage(config_dir, "x1")
    assert [p.name for p in stage.profiles] == ["big", "fallback-1", "fallback-2"]
    assert [p.min_vram_gb for p in stage.profiles] == [80, 48, 24]
    big = stage.gpu
    assert (big.gpu_count, big.gpu_model) == (2, "H100")
    assert stage.profiles[2].allow_fractional
    small = stage.for_profile(stage.profiles[2])
    assert small.command == ("python", "train.py", "--batch-size", "8")
    assert dict(small.env) == {"A": "stage", "B": "profile", "C": "profile"}
    assert small.gpu.min_vram_gb == 24 and small.for_profile(small.gpu) == small


def test_a_stage_without_profiles_takes_the_default_list():
    smoke = load_stage(CONFIGS, "smoke")
    assert [(p.name, p.min_vram_gb, p.gpu_count) for p in smoke.profiles] == \
        [("preferred", 40, 1)]


def test_a_reused_volume_is_always_kept(config_dir):
    write_stage(config_dir, "x1", "name: x1\ncommand: [a]\n"
                f"volume: {{reuse_label: {REUSABLE_VOLUME_PREFIX}ups, keep: false}}\n")
    volume = load_stage(config_dir, "x1").volume
    assert (volume.reuse_label, volume.keep) == ("launcher-cache-ups", True)


def test_image_and_stage_level_overrides(config_dir):
    write_stage(config_dir, "x1", "name: x1\ncommand: [a]\nregions: [ewr]\n"
                f"max_price_per_hour: 2.5\nimage: {{snapshot: '{SNAPSHOT_ID}'}}\n")
    stage = load_stage(config_dir, "x1")
    assert stage.regions == ("ewr",) and stage.max_price_per_hour == 2.5
    assert stage.image.snapshot == SNAPSHOT_ID and not stage.image.wants_latest
    assert stage.image.snapshot_prefix == "launcher-gpu-"


def test_the_command_can_be_replaced_at_load(config_dir):
    stage = load_stage(CONFIGS, "diffusion", command_override=["python", "-m", "x", "$NOT"])
    assert stage.command == ("python", "-m", "x", "$NOT")
    assert all(not p.overrides.args for p in stage.profiles)
    with pytest.raises(ConfigError, match="--command: expected at least 1 item"):
        load_stage(CONFIGS, "diffusion", command_override=[])


def test_an_ssh_public_key_is_checked(config_dir, tmp_path):
    public, private = tmp_path / "id.pub", tmp_path / "id"
    public.write_text("ssh-ed25519 AAAAC3Nza me@example\n")
    private.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-material\n")
    defaults = config_dir / "launcher.yaml"
    base = defaults.read_text()
    defaults.write_text(base + f"access: {{ssh_public_key: '{public}'}}\n")
    assert load_stage(config_dir, "smoke").access.ssh_public_key == str(public)
    for path, expected in ((private, "expected an OpenSSH public key"),
                           (tmp_path / "absent.pub", "absent.pub: not found")):
        defaults.write_text(base + f"access: {{ssh_public_key: '{path}'}}\n")
        with pytest.raises(ConfigError) as raised:
            load_stage(config_dir, "smoke")
        message = str(raised.value)
        assert message.startswith(f"{defaults}: field access.ssh_public_key: {path}: ")
        assert expected in message and "secret-material" not in message


@pytest.mark.parametrize(("text", "expected"), [
    ("max_price_per_hour: -1\n", "field max_price_per_hour: expected a number > 0, got -1"),
    ("regions: []\n", "field regions: expected at least 1 item"),
    ("regions: [sjc, sjc]\n", "field regions: expected no repeated items"),
    ("regions: [SJC]\n", "field regions.0: expected a Vultr region id"),
    ("gpu_profiles: []\n", "field gpu_profiles: expected at least 1 item"),
    ("gpu_profiles: [{gpu_count: 1}]\n", "field gpu_profiles.0.min_vram_gb: missing (required)"),
    ("gpu_profiles: [{min_vram_gb: 8, overrides: {args: [x], cmd: y}}]\n",
     "field gpu_profiles.0.overrides.cmd: unknown field (expected one of args, env)"),
    ("gpu_profiles: [{min_vram_gb: 8, name: a}, {min_vram_gb: 4, name: a}]\n",
     "field gpu_profiles.1.name: expected a name no other profile has, got 'a' again"),
    ("image: {snapshot: newest}\n", "field image.snapshot: expected latest, or one "
                                   "snapshot's id"),
    ("image: {snapshot: 1234}\n", "field image.snapshot: expected string, got integer"),
    ("volume: {reuse_label: my-cache}\n", "field volume.reuse_label: expected "
                                          "launcher-cache- then a name"),
    ("colour: blue\n", "field colour: unknown field (expected one of cluster, code, command, "),
])
def test_a_bad_value_is_one_line_naming_file_field_and_expectation(config_dir, text, expected):
    path = write_stage(config_dir, "x1", "name: x1\ncommand: [a]\n" + text)
    with pytest.raises(ConfigError) as raised:
        load_stage(config_dir, "x1")
    message = str(raised.value)
    assert message.startswith(f"{path}: {expected}"), message
    assert "\n" not in message


def test_vast_installs_git_unless_a_stage_says_otherwise(config_dir):
    assert load_stage(config_dir, "diffusion").vast.apt_packages == ("git",)
    write_stage(config_dir, "x2", """name: x2
command: [python, train.py]
vast: {apt_packages: [git, rclone]}
""")
    assert load_stage(config_dir, "x2").vast.apt_packages == ("git", "rclone")
    write_stage(config_dir, "x3", """name: x3
command: [python, train.py]
vast: {apt_packages: ["git; rm -rf /"]}
""")
    with pytest.raises(ConfigError, match=r"x3\.yaml.*vast\.apt_packages"):
        load_stage(config_dir, "x3")
