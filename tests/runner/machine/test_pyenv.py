"""The env phase for real: a virtual environment on the "volume", made once per dependency
set, reused, rebuilt when the code's dependency files change, refused loudly when pip fails.
Offline: the project installs with pip's --no-index through a tiny in-tree build backend
(PEP 517/660), so no build tool has to be downloaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.keys import FAKE_B2_APP_KEY, FAKE_VULTR_KEY

from launcher.runner import pyenv
from launcher.runner.spec import PythonEnv
from launcher.runner.status import PhaseFailed

from .conftest import SYSTEM_PATH, make_context, make_spec

OFFLINE = ("--no-index", "--no-build-isolation")
PYPROJECT = """[build-system]
requires = []
build-backend = "backend"
backend-path = ["."]

[project]
name = "tinyproj"
version = "{version}"
"""
# A wheel is a zip with METADATA, WHEEL and RECORD; the editable one holds a .pth file that
# puts the project's folder on sys.path.
BACKEND = """import base64, hashlib, os, re, zipfile
VERSION = re.search(r'version = "([^"]+)"', open("pyproject.toml").read()).group(1)
def _wheel(directory, files):
    dist, name = f"tinyproj-{VERSION}.dist-info", f"tinyproj-{VERSION}-py3-none-any.whl"
    files = {**files,
             f"{dist}/METADATA": f"Metadata-Version: 2.1\\nName: tinyproj\\nVersion: {VERSION}\\n",
             f"{dist}/WHEEL": "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\n"
                              "Tag: py3-none-any\\n"}
    records = []
    with zipfile.ZipFile(os.path.join(directory, name), "w") as wheel:
        for path, text in files.items():
            data = text.encode()
            wheel.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            records.append(f"{path},sha256={digest.decode()},{len(data)}")
        wheel.writestr(f"{dist}/RECORD", "\\n".join([*records, f"{dist}/RECORD,,"]) + "\\n")
    return name
def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, {"tinyproj.py": open("tinyproj.py").read()})
def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, {"tinyproj.pth": os.getcwd() + "\\n"})
"""


def project(root: Path, version: str = "0.1") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT.format(version=version))
    (root / "tinyproj.py").write_text("WHERE = __file__\n")
    (root / "backend.py").write_text(BACKEND)
    return root


def context(tmp_path: Path, **env_fields):
    fields = {"install": ("-e", "."), "pip_args": OFFLINE, "python": sys.executable,
              **env_fields}
    spec = make_spec(tmp_path, python_env=PythonEnv(**fields))
    (tmp_path / "mnt").mkdir(exist_ok=True)
    # A credential in the runner's environment must not reach pip.
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{SYSTEM_PATH}",
           "VULTR_KEY": FAKE_VULTR_KEY, "B2_APP_KEY": FAKE_B2_APP_KEY}
    return make_context(spec, env)


def imports_from(result: pyenv.PythonEnvResult) -> str:
    return subprocess.run([result.python, "-c", "import tinyproj; print(tinyproj.WHERE)"],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_nothing_to_install_makes_no_environment(tmp_path):
    ctx = context(tmp_path, install=())
    assert pyenv.prepare(ctx, tmp_path) is None and ctx.python_env is None
    assert not pyenv.venvs_dir(ctx).exists()


def test_an_environment_is_made_once_and_reused_while_the_dependencies_stay(tmp_path):
    code = project(tmp_path / "code")
    ctx = context(tmp_path)
    first = pyenv.prepare(ctx, code)
    assert first is not None and not first.reused and ctx.python_env == first
    assert first.path.parent == tmp_path / "mnt" / "venvs"
    assert (first.path / pyenv.READY).is_file()
    assert imports_from(first) == str(code / "tinyproj.py")  # editable: the code's own file
    (code / "tinyproj.py").write_text("WHERE = 'changed code, same dependencies'\n")
    again = pyenv.prepare(context(tmp_path), code)
    assert again.reused and again.path == first.path and again.seconds == 0
    assert imports_from(again) == "changed code, same dependencies"
    log = (tmp_path / "log" / "pip.log").read_text()
    assert "Successfully installed tinyproj" in log
    assert FAKE_VULTR_KEY not in log and FAKE_B2_APP_KEY not in log


def test_a_changed_dependency_file_makes_a_new_environment(tmp_path):
    code = project(tmp_path / "code")
    first = pyenv.prepare(context(tmp_path), code)
    project(code, version="0.2")
    second = pyenv.prepare(context(tmp_path), code)
    assert not second.reused and second.path != first.path
    assert pyenv.env_key(context(tmp_path), code) == second.path.name


def test_pip_failing_fails_the_phase_and_the_next_try_starts_over(tmp_path):
    code = project(tmp_path / "code")
    ctx = context(tmp_path, install=("-e", ".", "no-such-package-anywhere"))
    with pytest.raises(PhaseFailed, match=r"pip install failed .*logs/pip.log"):
        pyenv.prepare(ctx, code)
    key = pyenv.env_key(ctx, code)
    assert not (pyenv.venvs_dir(ctx) / key / pyenv.READY).exists()
    (pyenv.venvs_dir(ctx) / key / "stale-half-install").write_text("x")
    with pytest.raises(PhaseFailed):
        pyenv.prepare(ctx, code)
    assert not (pyenv.venvs_dir(ctx) / key / "stale-half-install").exists()


def test_a_missing_python_is_named(tmp_path):
    ctx = context(tmp_path, python="/nonexistent/python3")
    with pytest.raises(PhaseFailed, match="python_env.python"):
        pyenv.prepare(ctx, project(tmp_path / "code"))


def base_site_packages() -> str:
    """The base interpreter's site-packages, which only a system-site environment sees."""
    return subprocess.run([sys.executable, "-c", "import sys, sysconfig; print(sysconfig."
                           "get_paths(vars={'base': sys.base_prefix})['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()


def env_sys_path(result: pyenv.PythonEnvResult) -> list[str]:
    return subprocess.run([result.python, "-c", "import sys; print('\\n'.join(sys.path))"],
                          capture_output=True, text=True, check=True).stdout.split()


@pytest.mark.parametrize("shared", [True, False, None])
def test_the_environment_sees_the_interpreters_packages_only_when_asked(tmp_path, shared):
    code = project(tmp_path / "code")
    result = pyenv.prepare(context(tmp_path, system_site_packages=shared), code)
    config = (result.path / "pyvenv.cfg").read_text()
    assert f"include-system-site-packages = {'true' if shared else 'false'}" in config
    assert (base_site_packages() in env_sys_path(result)) is bool(shared)
    assert imports_from(result) == str(code / "tinyproj.py")


def test_seeing_the_interpreters_packages_is_part_of_the_environments_key(tmp_path):
    code = project(tmp_path / "code")
    keys = {pyenv.env_key(context(tmp_path, system_site_packages=shared), code)
            for shared in (True, False)}
    assert len(keys) == 2
    assert pyenv.env_key(context(tmp_path, system_site_packages=None), code) in keys
