"""The provisioning scripts keep their shared contract (docs/bake.md), checked without root.

Only paths that change nothing run here: the INSTALL_NVIDIA=0 skips and the input checks,
which come before any other step. The scripts' real work is executed where a machine is built
from them (the test VM image, a bake).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .hcl import PACKER

SCRIPTS = sorted((PACKER / "scripts").glob("*.sh"))


def run(script: str, **env: str) -> subprocess.CompletedProcess:
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
