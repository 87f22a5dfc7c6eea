"""The code bundle of a subdirectory: only that subdirectory travels, and only changes inside
it make the bundle dirty (a checkout's unrelated edits elsewhere do not)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from launcher.bucket import BucketAddress
from launcher.errors import ConfigError
from launcher.provision.code import bundle_code, require_at_head

from .conftest import git

ADDRESS = BucketAddress("http://127.0.0.1:9", "b", "runs")


def make_repo(root: Path) -> Path:
    (root / "stage").mkdir(parents=True)
    (root / "stage" / "train.py").write_text("print('hi')\n")
    (root / "other.txt").write_text("elsewhere\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "first")
    return root / "stage"


def test_a_subdirectory_packs_alone_and_edits_elsewhere_leave_it_clean(tmp_path):
    stage = make_repo(tmp_path / "repo")
    (tmp_path / "repo" / "other.txt").write_text("edited, not committed\n")
    (tmp_path / "repo" / "untracked.txt").write_text("new\n")
    out = tmp_path / "out"
    out.mkdir()
    bundle = bundle_code(stage, out, ADDRESS, "r-1")
    assert not bundle.dirty
    with tarfile.open(bundle.path) as tar:
        assert [m.name for m in tar.getmembers() if m.isfile()] == ["train.py"]
    assert bundle.key == "runs/r-1/code.tar.gz"


def test_an_edit_inside_the_subdirectory_makes_it_dirty(tmp_path):
    stage = make_repo(tmp_path / "repo")
    (stage / "train.py").write_text("print('changed')\n")
    out = tmp_path / "out"
    out.mkdir()
    assert bundle_code(stage, out, ADDRESS, "r-1").dirty


def test_files_a_stage_needs_must_be_committed_at_head(tmp_path):
    stage = make_repo(tmp_path / "repo")
    require_at_head(stage, ("train.py",), "the stage runs it")
    (stage / "configs").mkdir()
    (stage / "configs" / "new.yaml").write_text("not committed\n")
    with pytest.raises(ConfigError, match=r"configs/new.yaml, gone.py not committed at HEAD "
                                          r"\(the stage runs them"):
        require_at_head(stage, ("train.py", "configs/new.yaml", "gone.py"), "the stage runs them")
    with pytest.raises(ConfigError, match="git rev-parse failed"):
        require_at_head(tmp_path, ("x",), "y")
