"""``launcher init``: the shipped starter configuration copied into a training checkout, all
or nothing, and read from there by every command."""

from __future__ import annotations

import shutil

import pytest

from launcher.cli import main
from launcher.config import load_stage
from launcher.config.starter import write_starter

from .conftest import CONFIGS

STARTER = ["launcher.yaml", "stages/diffusion.yaml", "stages/full.yaml",
           "stages/operator-ddp.yaml", "stages/operator.yaml", "stages/smoke.yaml"]


def listing(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_init_writes_the_shipped_defaults_and_stages_but_not_the_demo(workdir, capsys):
    assert main(["init"]) == 0
    out = capsys.readouterr().out
    assert listing(workdir / ".launcher") == STARTER
    for name in STARTER:
        assert (workdir / ".launcher" / name).read_bytes() == (CONFIGS / name).read_bytes()
        assert f"wrote .launcher/{name}" in out
    assert "has no scripts/run_fast_to_sota.py" in out  # not a UPS checkout: said so


def test_commands_run_from_the_checkout_read_what_init_wrote(workdir, capsys):
    (workdir / "scripts").mkdir()
    (workdir / "scripts" / "run_fast_to_sota.py").write_text("")
    assert main(["init", str(workdir)]) == 0
    assert "has no" not in capsys.readouterr().out
    stage = workdir / ".launcher" / "stages" / "diffusion.yaml"
    stage.write_text(stage.read_text().replace("max_hours: 12", "max_hours: 7"))

    assert main(["config", "show", "--stage", "diffusion", "--json"]) == 0
    shown = capsys.readouterr().out
    assert '"config_dir": ".launcher"' in shown and '"max_hours": 7' in shown
    assert load_stage(workdir / ".launcher", "operator").name == "operator"


def test_a_file_already_there_stops_init_before_anything_is_written(workdir, capsys):
    mine = workdir / ".launcher" / "stages" / "full.yaml"
    mine.parent.mkdir(parents=True)
    mine.write_text("name: full  # my own\n")

    assert main(["init"]) == 2
    err = capsys.readouterr().err
    assert "stages/full.yaml already there; nothing was written" in err
    assert listing(workdir / ".launcher") == ["stages/full.yaml"]
    assert mine.read_text() == "name: full  # my own\n"


def test_not_a_folder_is_one_line_and_exit_2(workdir, capsys):
    (workdir / "file").write_text("")
    assert main(["init", "file"]) == 2
    assert main(["init", "missing"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["error: file: not a folder (expected the training checkout to write "
                   ".launcher/ into)",
                   "error: missing: not a folder (expected the training checkout to write "
                   ".launcher/ into)"]
    assert not (workdir / ".launcher").exists()


def test_a_failure_part_way_removes_what_it_wrote(workdir, monkeypatch):
    calls, copy = [], shutil.copyfile

    def copy_then_fail(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(28, "No space left on device", str(dst))
        return copy(src, dst)

    monkeypatch.setattr("launcher.config.starter.shutil.copyfile", copy_then_fail)
    with pytest.raises(OSError):
        write_starter(workdir)
    assert len(calls) == 3 and not (workdir / ".launcher").exists()
