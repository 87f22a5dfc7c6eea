"""Command-line overrides: parsed from the shared flags, checked by the files' own rules,
laid over the merged stage by one pure function."""

from __future__ import annotations

import argparse

import pytest

from launcher.config import (
    Overrides,
    add_override_flags,
    apply_overrides,
    load_stage,
    overrides_from_args,
)
from launcher.errors import ConfigError

from .conftest import CONFIGS

SNAPSHOT_ID = "5f0d2c1e-8a3b-4c6d-9e7f-0a1b2c3d4e5f"


def _parse(*argv: str) -> Overrides:
    parser = argparse.ArgumentParser()
    add_override_flags(parser)
    return overrides_from_args(parser.parse_args(list(argv)))


def test_no_flags_no_overrides():
    assert _parse() == Overrides() and Overrides().is_empty()
    stage = load_stage(CONFIGS, "diffusion")
    assert apply_overrides(stage, Overrides()) == stage


def test_every_flag_reaches_its_field():
    overrides = _parse("--regions", "ewr, ord,", "--min-vram", "48", "--gpu-count", "2",
                       "--max-price", "3.5", "--max-hours", "6", "--max-cost", "20",
                       "--snapshot", SNAPSHOT_ID, "--command", "python train.py --x 'a b' $HOME",
                       "--no-keep-volume", "--reuse-volume", "ups")
    assert overrides == Overrides(
        regions=("ewr", "ord"), min_vram_gb=48, gpu_count=2, max_price_per_hour=3.5,
        max_hours=6.0, max_cost_usd=20.0, snapshot=SNAPSHOT_ID,
        command=("python", "train.py", "--x", "a b", "$HOME"), keep_volume=False,
        reuse_volume="ups")


def test_overrides_are_applied_over_the_merged_stage():
    stage = load_stage(CONFIGS, "diffusion")
    new = apply_overrides(stage, Overrides(
        regions=("ewr",), min_vram_gb=48, max_price_per_hour=3.5, max_hours=6,
        max_cost_usd=20, snapshot=SNAPSHOT_ID, reuse_volume="ups"))
    assert new.regions == ("ewr",) and new.max_price_per_hour == 3.5
    assert (new.max_hours, new.max_cost_usd) == (6, 20)
    assert [(p.name, p.min_vram_gb, p.gpu_count) for p in new.profiles] == \
        [("preferred", 48, 1)]
    assert new.image.snapshot == SNAPSHOT_ID and new.image.snapshot_prefix == "launcher-gpu-"
    assert (new.volume.reuse_label, new.volume.keep) == ("launcher-cache-ups", True)
    assert new.command == stage.command and new.storage == stage.storage
    assert stage.max_hours == 12 and len(stage.profiles) == 2  # the input is untouched


def test_keep_and_reuse_of_the_volume():
    stage = load_stage(CONFIGS, "smoke")
    assert apply_overrides(stage, Overrides(keep_volume=True)).volume.keep
    reused = apply_overrides(stage, Overrides(reuse_volume="launcher-cache-ups",
                                              keep_volume=False))
    assert (reused.volume.reuse_label, reused.volume.keep) == ("launcher-cache-ups", True)
    fresh = apply_overrides(reused, Overrides(reuse_volume="", keep_volume=False))
    assert (fresh.volume.reuse_label, fresh.volume.keep) == ("", False)


def test_a_replaced_command_drops_the_profiles_extra_args_but_not_their_env():
    stage = load_stage(CONFIGS, "diffusion")
    assert stage.profiles[1].overrides.args
    new = apply_overrides(stage, Overrides(command=("python", "other.py")))
    fallback = new.for_profile(new.profiles[1])
    assert fallback.command == ("python", "other.py")
    assert fallback.gpu.min_vram_gb == 40


@pytest.mark.parametrize(("argv", "expected"), [
    (["--max-price", "-1"], "--max-price: expected a number > 0, got -1.0"),
    (["--max-price", "cheap"], "--max-price: expected a number, got 'cheap'"),
    (["--min-vram", "4.5"], "--min-vram: expected an integer, got '4.5'"),
    (["--gpu-count", "0"], "--gpu-count: expected a number >= 1, got 0"),
    (["--max-hours", "1000"], "--max-hours: expected a number <= 720, got 1000.0"),
    (["--regions", ""], "--regions: expected at least 1 item"),
    (["--regions", " , "], "--regions: expected at least 1 item"),
    (["--regions", "sjc,Frankfurt"],
     "--regions[1]: expected a Vultr region id (3 or 4 lowercase letters) or, for Vast.ai, "
     "a country code (2 capitals), e.g. sjc; got 'Frankfurt'"),
    (["--snapshot", "newest"], "--snapshot: expected latest, or one snapshot's id (a UUID"),
    (["--snapshot", "5f0d2c1e"], "--snapshot: expected latest, or one snapshot's id"),
    (["--command", ""], "--command: expected at least 1 item"),
    (["--command", "python 'unbalanced"], "--command: cannot split into arguments"),
    (["--reuse-volume", "Bad Name"],
     "--reuse-volume: expected launcher-cache- then a name of 1 to 48 lowercase letters"),
])
def test_a_bad_flag_is_one_line_naming_it(argv, expected):
    stage = load_stage(CONFIGS, "smoke")
    with pytest.raises(ConfigError) as raised:
        apply_overrides(stage, _parse(*argv))
    assert str(raised.value).startswith(expected), str(raised.value)
    assert "\n" not in str(raised.value)
