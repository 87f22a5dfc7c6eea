"""Issue 14, point 12: what ``config show`` prints for a stage uses the stage files' own names,
so pasted into a stage file (beside the same launcher.yaml) it loads as the same stage."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import yaml

from launcher.cli import main
from launcher.config import load_account, load_stage, stage_names, validator
from launcher.config.overrides import Overrides
from launcher.config.view import resolve_stage

from .conftest import CONFIGS

OVERRIDES = ("--regions", "ewr,sjc", "--min-vram", "24", "--max-cost", "50",
             "--reuse-volume", "ups", "--max-price", "3")


def show(capsys, name: str, *flags: str) -> dict:
    assert main(["config", "show", "--stage", name, "--json", "--config-dir", str(CONFIGS),
                 *flags]) == 0
    return json.loads(capsys.readouterr().out)


def pasted(tmp_path: Path, name: str, stage: dict) -> Path:
    """A config dir with the shipped launcher.yaml and ``stage`` as stages/<name>.yaml."""
    target = tmp_path / "pasted"
    (target / "stages").mkdir(parents=True)
    shutil.copy(CONFIGS / "launcher.yaml", target / "launcher.yaml")
    (target / "stages" / f"{name}.yaml").write_text(yaml.safe_dump(stage, sort_keys=False))
    return target


def same(a, b) -> bool:
    return dataclasses.replace(a, files=()) == dataclasses.replace(b, files=())


@pytest.mark.parametrize("name", stage_names(CONFIGS))
def test_the_stage_shown_is_a_stage_file_that_loads_as_the_same_stage(name, workdir, capsys,
                                                                      tmp_path):
    stage = show(capsys, name)["stage"]
    errors = list(validator("stage.schema.json").iter_errors(stage))
    assert not errors, [e.message for e in errors]
    assert same(load_stage(pasted(tmp_path, name, stage), name), load_stage(CONFIGS, name))


def test_with_overrides_the_shown_stage_is_the_overridden_one(workdir, capsys, tmp_path):
    report = show(capsys, "full", *OVERRIDES)
    expected = resolve_stage(CONFIGS, "full", load_account({}), Overrides(
        regions=("ewr", "sjc"), min_vram_gb=24, max_cost_usd=50.0, reuse_volume="ups",
        max_price_per_hour=3.0))
    assert same(load_stage(pasted(tmp_path, "full", report["stage"]), "full"), expected)
    assert report["stage"]["volume"]["reuse_label"] == "launcher-cache-ups"


def test_what_only_launcher_yaml_sets_is_shown_apart_in_its_names(workdir, capsys):
    report = show(capsys, "smoke")
    assert set(report["launcher_yaml"]) <= set(
        json.loads((CONFIGS / "schema" / "launcher.schema.json").read_text())["properties"])
    assert {"provider", "heartbeat_s", "storage", "health"} <= set(report["launcher_yaml"])
    assert not {"files", "profiles", "provider", "storage"} & set(report["stage"])


def test_the_text_shows_the_same_stage_file(workdir, capsys):
    json_stage = show(capsys, "operator")["stage"]
    assert main(["config", "show", "--stage", "operator", "--config-dir", str(CONFIGS)]) == 0
    text = capsys.readouterr().out
    block = text.split("as a stage file writes it:\n", 1)[1].split("\n\n", 1)[0]
    assert yaml.safe_load(block) == json_stage
    assert "\nthe command it runs: python scripts/run_fast_to_sota.py" in text

