"""``launcher offers`` end to end against the emulator: table, pick, --all, --json, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import client_for
from support.narrow import NARROW, cut_or_split

from launcher.cli import main

OFFER_KEYS = {"plan", "kind", "region", "gpu_type", "gpu_model", "gpu_count", "vram_per_gpu_gb",
              "total_vram_gb", "fractional", "whole_node", "vcpu", "ram_mb", "price_per_hour",
              "price_source", "in_stock", "offered", "on_demand", "label"}
REQUIREMENT_KEYS = {"min_vram_gb", "gpu_count", "max_gpu_count", "gpu_model", "allow_fractional",
                    "max_price_per_hour", "regions", "needs_nvme_block", "image_supports_vgpu",
                    # added with Vast.ai (additive: no key was renamed or removed)
                    "min_reliability", "min_disk_gb", "min_inet_down_mbps", "countries"}


@pytest.fixture
def api(emulator, monkeypatch):
    monkeypatch.setenv("VULTR_API_URL", emulator.url)  # public endpoints: no key needed
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps at the terminal width
    return emulator


CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def run_json(capsys, *argv):
    code = main(["offers", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_the_json_schema_is_stable(api, capsys):
    code, data = run_json(capsys, "--min-vram", "40")
    assert code == 0
    assert set(data) == {"requirement", "pick", "candidates", "excluded", "closest"}
    assert set(data["requirement"]) == REQUIREMENT_KEYS
    assert data["requirement"]["regions"] == ["sjc", "sea", "lax"]
    assert set(data["pick"]) == {"plan", "region", "kind", "price_per_hour", "why"}
    assert data["pick"]["plan"] == "vcg-l40s-16c-180g-48vram" and data["pick"]["region"] == "sjc"
    assert data["candidates"] and all(set(o) == OFFER_KEYS for o in data["candidates"])
    assert data["candidates"][0]["plan"] == data["pick"]["plan"]
    assert data["excluded"] == [] and data["closest"] == []
    _, everything = run_json(capsys, "--min-vram", "40", "--all")
    excluded = everything["excluded"]
    assert excluded and all(set(v) == OFFER_KEYS | {"ok", "reasons"} for v in excluded)
    assert all(not v["ok"] and v["reasons"] for v in excluded)
    assert all(set(r) == {"code", "text"} for v in excluded for r in v["reasons"])
    assert api.mutations() == []


def test_the_table_marks_the_pick_and_says_why(api, capsys):
    assert main(["offers", "--min-vram", "40"]) == 0
    out = capsys.readouterr().out
    assert "▶ run would pick vcg-l40s-16c-180g-48vram in sjc" in out
    assert "first region in priority order" in " ".join(out.split())
    assert "cheapest fitting plan there" in " ".join(out.split())
    assert "excluded offers" not in out
    assert api.mutations() == []


def test_all_shows_excluded_rows_with_reasons(api, capsys):
    assert main(["offers", "--min-vram", "40", "--all"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "excluded offers" in out
    assert "not in stock in lax" in out and "vGPU slice" in out
    assert "bare metal takes no block-storage volume" in out


def test_sold_out_everywhere_but_sea_moves_the_pick(api, capsys):
    api.set_stock("sjc", [])
    code, data = run_json(capsys, "--min-vram", "40", "--regions", "sjc,sea")
    assert code == 0 and data["pick"]["region"] == "sea"
    assert "nothing fitting in stock in sjc" in data["pick"]["why"]


def test_nothing_fits_exits_1_with_the_closest_rows_and_reasons(api, capsys):
    assert main(["offers", "--gpu-count", "8", "--max-price", "1"]) == 1
    captured = capsys.readouterr()
    out = " ".join(captured.out.split())
    assert "No offer fits" in out and "closest offers" in out
    assert "fewer than the 8 needed" in out and "over the $1.00/h maximum" in out
    assert "Traceback" not in captured.err
    code, data = run_json(capsys, "--gpu-count", "8", "--max-price", "1")
    assert code == 1 and data["pick"] is None and data["candidates"] == []
    assert data["closest"] and all(v["reasons"] for v in data["closest"])


def test_a_stage_supplies_the_needs_and_flags_override_them(api, capsys, tmp_path):
    # The shipped configs, with the diffusion stage capped at $5/h: its preferred profile
    # (80 GB per GPU), its regions and its price ceiling become the requirement.
    config_dir = tmp_path / "configs"
    shutil.copytree(CONFIGS, config_dir)
    stage_file = config_dir / "stages" / "diffusion.yaml"
    stage_file.write_text(stage_file.read_text() + "max_price_per_hour: 5.0\n")
    code, data = run_json(capsys, "--stage", "diffusion", "--config-dir", str(config_dir))
    assert code == 0 and data["requirement"]["min_vram_gb"] == 80
    assert data["requirement"]["max_price_per_hour"] == 5.0
    assert [(o["plan"], o["region"]) for o in data["candidates"]] == [
        ("vcg-a100-12c-120g-80vram", "sea"), ("vcg-a100-12c-120g-80vram", "lax")]
    code, data = run_json(capsys, "--stage", "diffusion", "--config-dir", str(config_dir),
                          "--min-vram", "48", "--regions", "lax")
    assert data["requirement"]["min_vram_gb"] == 48 and data["requirement"]["regions"] == ["lax"]
    assert data["pick"]["plan"] == "vcg-a40-24c-120g-48vram"


def test_bad_regions_are_refused(api, capsys):
    assert main(["offers", "--regions", "sea,atlantis"]) == 2
    assert "unknown region id(s): atlantis" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["offers", "--regions", "sea,,lax"])
    assert exited.value.code == 2
    assert "expected distinct region ids" in capsys.readouterr().err


def test_an_api_failure_is_an_error_not_an_empty_table(api, monkeypatch, capsys):
    monkeypatch.setattr("launcher.commands.runcommon.vultr_client",
                        lambda account: client_for(account.vultr_api_url, key=None))
    api.inject("GET /plans", "503", count=20)
    assert main(["offers", "--json"]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: GET /plans (HTTP 503)")
    assert "No offer fits" not in captured.err and "Traceback" not in captured.err


@pytest.mark.parametrize("columns", NARROW)
def test_a_narrow_terminal_shows_every_plan_region_and_price_whole(api, capsys, monkeypatch,
                                                                   columns):
    monkeypatch.setenv("COLUMNS", columns)
    assert main(["offers", "--min-vram", "40"]) == 0
    out = capsys.readouterr().out
    _, data = run_json(capsys, "--min-vram", "40")
    fitting = data["candidates"]
    words = [o["plan"] for o in fitting] + [o["region"] for o in fitting] + \
        [f"{o['price_per_hour']:,.2f}" for o in fitting]
    assert len(fitting) >= 3 and cut_or_split(out, words) == []


@pytest.mark.parametrize("columns", NARROW)
def test_all_is_a_screenful_that_names_the_excluded_plans_whole(api, capsys, monkeypatch,
                                                                columns):
    monkeypatch.setenv("COLUMNS", columns)
    assert main(["offers", "--all"]) == 0
    out = capsys.readouterr().out
    _, data = run_json(capsys, "--all")
    assert len(out.splitlines()) <= 70  # was 343 lines at 80 columns: one row per plan
    excluded = [v["plan"] for v in data["excluded"]]
    assert len(set(excluded)) > 20 and cut_or_split(out, excluded) == []
    assert "`launcher offers --all --json`" in out  # every offer with all its reasons


def test_all_shows_at_most_a_few_groups_and_counts_the_rest(api, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["offers", "--all", "--min-vram", "40"]) == 0
    out = capsys.readouterr().out
    _, data = run_json(capsys, "--all", "--min-vram", "40")
    shown = {v["plan"] for v in data["excluded"] if v["plan"] in out}
    left_out = len({v["plan"] for v in data["excluded"]}) - len(shown)
    assert left_out > 0 and f"{left_out} more excluded plan(s)" in out
    assert len(out.splitlines()) <= 70
