"""The rendered unit files, checked by systemd's own parser (``systemd-analyze verify``)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from support.need import need

from launcher.render import BootInputs, render

from .conftest import fake_secrets, files_by_path, make_spec, tiny_runner

UNIT_DIR = "/etc/systemd/system/"


@pytest.fixture(scope="module")
def units() -> dict[str, str]:
    document = render(make_spec(), fake_secrets(), BootInputs(tiny_runner(), delete_volume=True))
    return {path.removeprefix(UNIT_DIR): entry["content"]
            for path, entry in files_by_path(document).items() if path.startswith(UNIT_DIR)}


def test_the_three_units_are_there(units):
    assert sorted(units) == ["launcher-runner.service", "launcher-watchdog.service",
                             "launcher-watchdog.timer"]
    runner = units["launcher-runner.service"]
    assert ("ExecStartPre=/usr/bin/python3 /opt/launcher/boot.pyz fetch "
            "--boot /etc/launcher/boot.json\n") in runner
    assert ("ExecStart=/usr/bin/python3 /opt/launcher/runner.pyz supervise "
            "--spec /etc/launcher/run.json\n") in runner
    assert "Type=simple\n" in runner and "Restart=no\n" in runner
    assert "KillMode=mixed\n" in runner and "TimeoutStopSec=900\n" in runner
    assert "TimeoutStartSec=2400\n" in runner and "RuntimeMaxSec" not in runner
    assert "After=network-online.target cloud-final.service\n" in runner
    watchdog = units["launcher-watchdog.service"]
    assert "Type=oneshot\n" in watchdog and " watchdog --spec /etc/launcher/run.json\n" in watchdog
    timer = units["launcher-watchdog.timer"]
    for line in ("OnBootSec=5min", "OnUnitInactiveSec=1min", "AccuracySec=10s",
                 "Unit=launcher-watchdog.service", "WantedBy=timers.target"):
        assert f"{line}\n" in timer


def test_systemd_parses_them_without_a_warning(units, tmp_path):
    analyze = shutil.which("systemd-analyze")
    need(analyze is not None, "systemd-analyze is absent: cannot run systemd's own unit parser")
    for name, text in units.items():
        (tmp_path / name).write_text(text)
    result = subprocess.run([analyze, "verify", "--man=no", *sorted(str(tmp_path / n)
                                                                    for n in units)],
                            capture_output=True, text=True, timeout=60, check=False,
                            cwd=tmp_path)
    about_ours = [line for line in (result.stdout + result.stderr).splitlines()
                  if str(tmp_path) in line]
    assert result.returncode == 0 and about_ours == [], "\n".join(about_ours)
