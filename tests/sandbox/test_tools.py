"""The shipped fake machine tools, run as the runner runs them: from the sandbox's bin/."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.sandbox.machine import TOOLS_DIR, attach_device, detach_device, install_tools

TOOLS = ("blkid", "mkfs.ext4", "mkfs.xfs", "mount", "umount", "iptables", "nvidia-smi",
         "useradd", "python3", "apt-get")


@pytest.fixture
def machine(tmp_path: Path):
    bin_dir = install_tools(tmp_path / "bin", sys.executable)
    host = tmp_path / "m/host"
    (host / "proc").mkdir(parents=True)
    (host / "proc/mounts").write_text("")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "LAUNCHER_RUNNER_TEST_HOST_ROOT": str(host)}

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=30)

    return tmp_path, host, run


def test_the_tools_ship_executable():
    for name in TOOLS:
        mode = (TOOLS_DIR / name).stat().st_mode
        assert mode & stat.S_IXUSR, name
        assert (TOOLS_DIR / name).read_text().startswith("#!/usr/bin/env python3\n")


def test_a_volume_is_blank_then_formatted_then_mounted(machine):
    root, host, run = machine
    name = attach_device(root, host, "blk-1", "sea-0123456789abcdefXYZ")
    device = host / "dev" / name
    assert (host / "dev/disk/by-id/virtio-sea-0123456789abcdef").resolve() == device
    assert (host / f"sys/block/{name}/serial").read_text() == "sea-0123456789abcdef\n"
    blank = run("blkid", "-p", "-o", "export", str(device))
    assert (blank.returncode, blank.stdout, blank.stderr) == (2, "", "")
    made = run("mkfs.ext4", "-q", "-L", "launcher-cache", str(device))
    assert made.returncode == 0 and "sandbox fake" in made.stderr
    found = run("blkid", "-p", "-o", "export", str(device))
    assert found.returncode == 0 and "TYPE=ext4" in found.stdout and "UUID=" in found.stdout
    mounted = run("mount", "-t", "ext4", "-o", "noatime", str(device), str(host / "mnt/c d"))
    assert mounted.returncode == 0
    assert f"{device} {host}/mnt/c\\040d ext4" in (host / "proc/mounts").read_text()
    assert run("umount", str(host / "mnt/c d")).returncode == 0
    assert (host / "proc/mounts").read_text() == ""
    detach_device(host, name, "sea-0123456789abcdefXYZ")
    assert not device.exists() and not (host / "sys/block" / name).exists()
    again = attach_device(root, host, "blk-1", "sea-0123456789abcdefXYZ")  # data kept
    assert "TYPE=ext4" in run("blkid", "-p", "-o", "export", str(host / "dev" / again)).stdout
    calls = [json.loads(line)["tool"]
             for line in (host / "var/log/sandbox-fakes.jsonl").read_text().splitlines()]
    assert calls[:3] == ["blkid", "mkfs.ext4", "blkid"]


def test_nothing_outside_the_host_is_touched(machine, tmp_path):
    _, _, run = machine
    outside = tmp_path / "outside.img"
    outside.write_bytes(b"\0" * 4096)
    assert run("mkfs.ext4", str(outside)).returncode != 0
    assert outside.read_bytes() == b"\0" * 4096
    assert run("mount", "-t", "ext4", "/dev/sda1", str(tmp_path / "x")).returncode != 0


def test_gpu_and_accounts_are_refused_loudly(machine):
    _, _, run = machine
    smi = run("nvidia-smi", "--query-gpu=index", "--format=csv")
    assert smi.returncode != 0 and "sandbox fake" in smi.stderr and "no GPU" in smi.stderr
    user = run("useradd", "--system", "trainer")
    assert user.returncode != 0 and "never creates accounts" in user.stderr
    rule = run("iptables", "-w", "-C", "OUTPUT", "-j", "REJECT")
    assert rule.returncode == 1 and "sandbox fake" in rule.stderr
    assert run("iptables", "-w", "-I", "OUTPUT", "-j", "REJECT").returncode == 0


def test_apt_get_installs_nothing_on_the_demo_machine_and_is_recorded(machine):
    _, host, run = machine
    done = run("apt-get", "install", "-y", "no-such-package-anywhere")
    assert done.returncode == 0 and "nothing installed" in done.stderr
    log = (host / "var/log/sandbox-fakes.jsonl").read_text()
    assert '"tool": "apt-get"' in log and "no-such-package-anywhere" in log


def test_the_matmul_probe_is_simulated_and_other_python_is_real(machine):
    _, _, run = machine
    from launcher.runner.health import MATMUL_SCRIPT

    probe = run("python3", "-c", MATMUL_SCRIPT, "cpu", "512")
    assert probe.returncode == 0 and "SIMULATED" in probe.stderr
    result = json.loads(probe.stdout.splitlines()[-1])
    assert result["ok"] is True and result["count"] == 1 and "simulated" in result["sandbox"]
    cuda = run("python3", "-c", MATMUL_SCRIPT, "cuda", "4096")
    assert cuda.returncode == 1 and json.loads(cuda.stdout)["ok"] is False
    real = run("python3", "-c", "import sys; print(6 * 7, sys.argv[1:])", "a")
    assert real.returncode == 0 and real.stdout == "42 ['a']\n"
    assert os.path.realpath(run("python3", "-c", "import sys; print(sys.executable)")
                            .stdout.strip()) == os.path.realpath(sys.executable)
