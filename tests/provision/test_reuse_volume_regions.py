"""``--reuse-volume NAME`` never silently makes a second ``launcher-cache-NAME``: candidates
in regions without it are left out (and said so), none left is a one-line refusal naming
the volume, its region and the two ways on, and ``--allow-second-volume`` confirms one."""

from __future__ import annotations

import pytest

from launcher.cli import main
from launcher.config import Overrides
from launcher.errors import ConfigError
from launcher.provision import LaunchResult, run_stage
from launcher.vultr import BlockSpec
from provision.test_inputs_and_dry_run import cli  # noqa: F401 - fixture

LABEL = "launcher-cache-ups"


def reuse(**changes) -> Overrides:
    return Overrides(reuse_volume="ups", **changes)


def labelled(bed) -> list[tuple[str, str]]:
    return sorted((b.id, b.region) for b in bed.emulator.state.blocks.values()
                  if b.label == LABEL)


def test_the_reusable_volume_in_a_later_region_is_used_and_no_second_is_made(quick_bed):
    deps = quick_bed.deps()
    cache = deps.provider.client.create_block(BlockSpec("sea", 50, LABEL))
    result = run_stage(quick_bed.request(overrides=reuse()), deps)
    assert isinstance(result, LaunchResult)
    assert result.volume.id == cache.id and result.instance.region == "sea"
    assert labelled(quick_bed) == [(cache.id, "sea")]
    (note,) = [n for n in result.notes if "left out" in n]
    assert "candidates in lax, sjc are left out" in note and "--allow-second-volume" in note


def test_a_second_volume_is_refused_when_no_offer_fits_where_the_first_is(quick_bed):
    deps = quick_bed.deps()
    cache = deps.provider.client.create_block(BlockSpec("sea", 50, LABEL))
    quick_bed.emulator.set_stock("sea", [])
    before = len(quick_bed.emulator.mutations())
    with pytest.raises(ConfigError) as refused:
        run_stage(quick_bed.request(overrides=reuse()), deps)
    message = str(refused.value)
    assert f"volume {LABEL} exists ({cache.id} in sea (50 GB))" in message
    assert "would create a second launcher-cache-ups" in message and "/month" in message
    assert "--regions sea" in message and "--allow-second-volume" in message
    assert len(quick_bed.emulator.mutations()) == before and labelled(quick_bed) == [
        (cache.id, "sea")]


def test_allow_second_volume_creates_one_where_there_is_none(quick_bed):
    deps = quick_bed.deps()
    cache = deps.provider.client.create_block(BlockSpec("sea", 50, LABEL))
    quick_bed.emulator.set_stock("sea", [])
    result = run_stage(quick_bed.request(overrides=reuse(), allow_second_volume=True), deps)
    assert isinstance(result, LaunchResult) and result.volume.id != cache.id
    assert sorted(r for _, r in labelled(quick_bed)) == ["sea", result.volume.region]


def test_the_command_refuses_in_one_line_and_takes_the_flag(bed, cli, capsys):  # noqa: F811
    client = bed.deps().provider.client
    client.create_block(BlockSpec("sea", 50, LABEL))
    bed.emulator.set_stock("sea", [])
    assert main([*cli, "--yes", "--reuse-volume", "ups"]) == 2
    err = capsys.readouterr().err
    assert "--allow-second-volume" in err and "Traceback" not in err
    assert main([*cli, "--yes", "--reuse-volume", "ups", "--allow-second-volume"]) == 0
    assert len(labelled(bed)) == 2
