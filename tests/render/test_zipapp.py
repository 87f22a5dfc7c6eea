"""The runner zipapp: reproducible, only the runner inside, slimmed without changing the
program, and runnable by a bare system interpreter."""

from __future__ import annotations

import ast
import io
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from launcher.render.zipapp import (
    BOOT_MAIN,
    BOOT_MODULES,
    FIXED_TIME,
    MAIN,
    RUNNER_DIR,
    build_boot_zipapp,
    build_runner_zipapp,
    slim_source,
    zipapp_listing,
)


def expected_listing() -> list[str]:
    modules = sorted(f"launcher/runner/{p.relative_to(RUNNER_DIR).as_posix()}"
                     for p in RUNNER_DIR.rglob("*.py") if "__pycache__" not in p.parts)
    return sorted(["__main__.py", "launcher/__init__.py", *modules])


def test_the_same_code_gives_the_same_bytes_wherever_it_lies(tmp_path):
    first, second = tmp_path / "a" / "runner", tmp_path / "b" / "runner"
    shutil.copytree(RUNNER_DIR, first, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(first, second)
    (second / "spec.py").touch()  # a newer mtime must not matter
    assert build_runner_zipapp(first) == build_runner_zipapp(second)


def test_it_holds_the_entry_point_a_stub_package_and_every_runner_module(runner_bytes):
    assert zipapp_listing(runner_bytes) == expected_listing()
    with zipfile.ZipFile(io.BytesIO(runner_bytes)) as archive:
        assert archive.read("__main__.py").decode() == MAIN
        stub = archive.read("launcher/__init__.py").decode()
        for info in archive.infolist():
            assert info.date_time == FIXED_TIME and info.compress_type == zipfile.ZIP_STORED
            assert (info.external_attr >> 16) & 0o777 == 0o644
    tree = ast.parse(stub)
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert "launcher.runner.cli" in MAIN and "main()" in MAIN


def test_caches_and_other_files_stay_out(tmp_path):
    runner = tmp_path / "runner"
    (runner / "__pycache__").mkdir(parents=True)
    (runner / "__init__.py").write_text('"""doc"""\n')
    (runner / "notes.txt").write_text("not code")
    (runner / "__pycache__" / "x.py").write_text("")
    (runner / "sub").mkdir()
    (runner / "sub" / "deep.py").write_text("X = 1  # one\n")
    assert zipapp_listing(build_runner_zipapp(runner)) == [
        "__main__.py", "launcher/__init__.py", "launcher/runner/__init__.py",
        "launcher/runner/sub/deep.py"]


def test_a_directory_without_init_is_not_a_runner(tmp_path):
    with pytest.raises(FileNotFoundError):
        build_runner_zipapp(tmp_path)


@pytest.mark.parametrize("path", sorted(RUNNER_DIR.rglob("*.py")), ids=lambda p: p.name)
def test_slimming_keeps_every_line_number_and_the_program(path):
    source = path.read_text(encoding="utf-8")
    slim = slim_source(source)
    assert len(slim.splitlines()) == len(source.splitlines())
    assert _without_docstrings(slim) == _without_docstrings(source)
    compile(slim, str(path), "exec")


def test_slimming_blanks_comments_and_docstrings():
    source = ('"""Module doc."""\n\nimport os  # why\n\n\ndef f():\n    """Doc\n    two."""\n'
              '    # note\n    return "# not a comment"\n')
    assert slim_source(source) == ('""\n\nimport os\n\n\ndef f():\n    ""\n\n\n'
                                   '    return "# not a comment"\n')


def test_a_module_that_reads_its_docstring_keeps_it():
    source = '"""Usage: x."""\nHELP = __doc__  # shown by --help\n'
    assert slim_source(source) == '"""Usage: x."""\nHELP = __doc__\n'


def test_source_that_does_not_parse_travels_unchanged():
    assert slim_source("def broken(:\n") == "def broken(:\n"


def test_every_runner_module_imports_from_the_zip_with_the_standard_library_only(
        runner_bytes, tmp_path):
    pyz = tmp_path / "runner.pyz"
    pyz.write_bytes(runner_bytes)
    modules = [name[:-3].replace("/", ".").removesuffix(".__init__")
               for name in zipapp_listing(runner_bytes)
               if name.startswith("launcher/runner/") and not name.endswith("__main__.py")]
    code = (f"import sys; sys.path.insert(0, {str(pyz)!r})\n"
            f"import importlib\nfor m in {modules!r}: importlib.import_module(m)\n"
            "import launcher; assert launcher.__file__.startswith(sys.path[0]), launcher.__file__")
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                            text=True, timeout=60, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_zipapp_runs_its_help(runner_bytes, tmp_path):
    pyz = tmp_path / "runner.pyz"
    pyz.write_bytes(runner_bytes)
    result = subprocess.run([sys.executable, "-I", "-S", str(pyz), "--help"],
                            capture_output=True, text=True, timeout=60, check=False,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for command in ("supervise", "watchdog"):
        assert command in result.stdout


def _without_docstrings(source: str) -> str:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def test_no_file_in_the_zip_comes_from_outside_the_runner(runner_bytes):
    outside = [n for n in zipapp_listing(runner_bytes)
               if n not in ("__main__.py", "launcher/__init__.py")
               and not n.startswith("launcher/runner/")]
    assert outside == []
    assert Path(RUNNER_DIR).name == "runner"


def test_the_bootstrap_holds_only_what_it_imports_and_runs_alone(tmp_path):
    boot = build_boot_zipapp()
    assert zipapp_listing(boot) == sorted(["__main__.py", "launcher/__init__.py",
                                           *(f"launcher/runner/{m}" for m in BOOT_MODULES)])
    with zipfile.ZipFile(io.BytesIO(boot)) as archive:
        assert archive.read("__main__.py").decode() == BOOT_MAIN
        assert "launcher.runner.boot" in BOOT_MAIN
        slimmed = archive.read("launcher/runner/boot.py").decode()
    assert slimmed == slim_source((RUNNER_DIR / "boot.py").read_text())
    pyz = tmp_path / "boot.pyz"
    pyz.write_bytes(boot)
    result = subprocess.run([sys.executable, "-I", "-S", str(pyz), "fetch", "--help"],
                            capture_output=True, text=True, timeout=60, check=False,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--boot" in result.stdout


def test_the_runner_keeps_its_docstrings(runner_bytes):
    with zipfile.ZipFile(io.BytesIO(runner_bytes)) as archive:
        assert archive.read("launcher/runner/boot.py") == (RUNNER_DIR / "boot.py").read_bytes()
