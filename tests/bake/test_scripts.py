"""The provisioning scripts keep their shared contract (docs/bake.md), checked without root.

Only paths that change nothing run here: the INSTALL_NVIDIA=0 skips and the input checks,
which come before any other step. The scripts' real work is executed where a machine is built
from them (the test VM image, a bake).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from vmhost.recipe import default_recipe

from .hcl import PACKER

SCRIPTS = sorted((PACKER / "scripts").glob("[0-9]*.sh"))  # the steps, run in this order
LIBRARY = PACKER / "scripts" / "lib.sh"  # their shared helpers
SOURCES_LIBRARY = 'source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"'


def run(script: str | Path, **env: str) -> subprocess.CompletedProcess:
    path = PACKER / "scripts" / script
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **env}
    return subprocess.run(["bash", str(path)], env=clean, capture_output=True, text=True,
                          timeout=30)


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_each_script_is_strict_bash_and_executable(path: Path):
    lines = path.read_text().splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in lines
    assert os.access(path, os.X_OK)
    assert "systemctl start" not in path.read_text()  # enable only: they also run in a chroot


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_each_script_sources_the_library_after_naming_itself(path: Path):
    lines = path.read_text().splitlines()
    assert lines.count(SOURCES_LIBRARY) == 1
    at = lines.index(SOURCES_LIBRARY)
    assert lines[at - 1] == "# shellcheck source=SCRIPTDIR/lib.sh"
    assert re.fullmatch(rf"NAME={re.escape(path.stem)}", lines[at - 2])  # log's prefix
    assert lines.index("set -euo pipefail") < at


def test_the_library_is_not_a_step_and_runs_nothing():
    assert not os.access(LIBRARY, os.X_OK)
    assert LIBRARY.read_text().startswith("# shellcheck shell=bash\n")
    done = subprocess.run(["bash", "-c", 'NAME=t; source "$1"; declare -F | wc -l', "bash",
                           str(LIBRARY)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stderr == "" and int(done.stdout) >= 6


def test_scripts_uploaded_as_packer_does_find_the_library(tmp_path):
    # The bake: lib.sh uploaded to /tmp/launcher-bake/, each script run from there under
    # Packer's own name (remote_folder = that folder, remote_file = script_<n>.sh).
    remote = tmp_path / "launcher-bake"
    remote.mkdir()
    shutil.copy(LIBRARY, remote / "lib.sh")
    shutil.copy(PACKER / "scripts" / "30-cuda.sh", remote / "script_4242.sh")
    result = run(remote / "script_4242.sh", INSTALL_NVIDIA="0")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[30-cuda] INSTALL_NVIDIA=0: skipping the CUDA toolkit\n"
    (remote / "lib.sh").unlink()
    result = run(remote / "script_4242.sh", INSTALL_NVIDIA="0")
    assert result.returncode != 0 and "lib.sh: No such file" in result.stderr


def test_the_vm_recipe_gets_whole_scripts_that_run_alone(tmp_path):
    # The test VM image runs the recipe's scripts, each written alone into the guest: the
    # library is inlined there, and a change to it changes the recipe's digest.
    recipe = default_recipe()
    assert [name for name, _ in recipe.scripts] == [p.name for p in SCRIPTS]
    library = LIBRARY.read_bytes()
    for name, content in recipe.scripts:
        assert SOURCES_LIBRARY not in content.decode().splitlines(), name
        assert content.count(library) == 1, name
        (tmp_path / name).write_bytes(content)
    skipped = run(tmp_path / "20-nvidia.sh", INSTALL_NVIDIA="0")
    assert skipped.returncode == 0, skipped.stderr
    assert "INSTALL_NVIDIA=0: skipping the NVIDIA driver" in skipped.stdout
    refused = run(tmp_path / "10-base.sh", S5CMD_VERSION="latest")
    assert refused.returncode == 1 and "S5CMD_VERSION must be a version" in refused.stderr
    changed = tmp_path / "changed"
    shutil.copytree(PACKER / "scripts", changed)
    (changed / "lib.sh").write_bytes(library + b"# changed\n")
    assert default_recipe(changed).digest() != recipe.digest()


@pytest.mark.parametrize("script", ["20-nvidia.sh", "30-cuda.sh"])
def test_install_nvidia_0_skips_saying_so(script):
    result = run(script, INSTALL_NVIDIA="0", NVIDIA_DRIVER_BRANCH="550", CUDA_VERSION="12.4")
    assert result.returncode == 0, result.stderr
    assert "INSTALL_NVIDIA=0: skipping" in result.stdout


@pytest.mark.parametrize(("script", "env", "named"), [
    ("20-nvidia.sh", {"INSTALL_NVIDIA": "yes"}, "INSTALL_NVIDIA must be 1 or 0"),
    ("30-cuda.sh", {"INSTALL_NVIDIA": "2"}, "INSTALL_NVIDIA must be 1 or 0"),
    ("20-nvidia.sh", {"NVIDIA_DRIVER_BRANCH": "550;reboot"}, "NVIDIA_DRIVER_BRANCH must be"),
    ("30-cuda.sh", {"CUDA_VERSION": "12"}, "CUDA_VERSION must be MAJOR.MINOR"),
    ("10-base.sh", {"S5CMD_VERSION": "latest"}, "S5CMD_VERSION must be a version"),
    ("40-python.sh", {"PYTHON_REQUIREMENTS": "/nonexistent/req.txt"},
     "PYTHON_REQUIREMENTS=/nonexistent/req.txt: no such file"),
])
def test_bad_input_is_refused_naming_the_variable(script, env, named):
    result = run(script, **env)
    assert result.returncode == 1
    assert named in result.stderr
    assert result.stdout == ""  # refused before doing anything


def _sourced(script: str, body: str, path: str, **env: str) -> subprocess.CompletedProcess:
    """Source ``script`` (its functions only) and run ``body``."""
    clean = {"PATH": path, "LANG": "C.UTF-8", **env}
    return subprocess.run(["bash", "-c", f'source "$1"; {body}', "bash",
                           str(PACKER / "scripts" / script)],
                          env=clean, capture_output=True, text=True, timeout=30)


def _fake(bin_dir: Path, name: str, text: str) -> None:
    (bin_dir / name).write_text(f"#!/bin/sh\n{text}\n")
    (bin_dir / name).chmod(0o755)


def test_headers_go_to_every_installed_kernel_and_the_flavour(tmp_path):
    modules, bin_dir = tmp_path / "modules", tmp_path / "bin"
    for kernel in ("5.15.0-105-generic", "5.15.0-119-generic"):  # 119: upgraded, not running
        (modules / kernel).mkdir(parents=True)
    bin_dir.mkdir()
    _fake(bin_dir, "uname", 'echo "5.15.0-105-generic"')
    done = _sourced("20-nvidia.sh", "kernel_headers", f"{bin_dir}:/usr/bin:/bin",
                    MODULES_DIR=str(modules))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["linux-headers-5.15.0-105-generic",
                                   "linux-headers-5.15.0-119-generic", "linux-headers-generic"]


def test_a_kernel_without_the_nvidia_module_fails_the_bake(tmp_path):
    modules, bin_dir = tmp_path / "modules", tmp_path / "bin"
    for kernel in ("5.15.0-105-generic", "5.15.0-119-generic"):
        (modules / kernel).mkdir(parents=True)
    bin_dir.mkdir()
    # DKMS built the module for the running kernel only.
    _fake(bin_dir, "modinfo", '[ "$2" = 5.15.0-105-generic ]')
    _fake(bin_dir, "dkms", 'echo "nvidia/550.120, 5.15.0-105-generic, x86_64: installed"')
    path = f"{bin_dir}:/usr/bin:/bin"
    done = _sourced("20-nvidia.sh", "check_modules", path, MODULES_DIR=str(modules))
    assert done.returncode == 1
    assert "no nvidia module for kernel(s) 5.15.0-119-generic" in done.stderr
    assert "dkms: nvidia/550.120" in done.stdout
    _fake(bin_dir, "modinfo", "exit 0")
    done = _sourced("20-nvidia.sh", "check_modules", path, MODULES_DIR=str(modules))
    assert done.returncode == 0 and "for every installed kernel" in done.stdout
