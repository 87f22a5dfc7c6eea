"""One launch per run id at a time on a machine: a second launch of the same run id while the
first is still planning or creating stops at once, naming the holder, and creates nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from launcher.provision import RunStateError, run_stage
from launcher.provision.lock import default_lock_dir, run_lock

HOLD = """
import sys, time
from pathlib import Path
from launcher.provision.lock import run_lock
with run_lock(sys.argv[1], Path(sys.argv[2])):
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_a_held_lock_refuses_a_second_holder_and_names_it(tmp_path):
    with run_lock("r-1", tmp_path) as path:
        assert path.read_text() == f"{os.getpid()}\n"
        refused = pytest.raises(RunStateError,
                                match=rf"run r-1 is being launched .*pid {os.getpid()}")
        with refused, run_lock("r-1", tmp_path):
            pass
        with run_lock("r-2", tmp_path):  # another run id is another lock
            pass
    with run_lock("r-1", tmp_path):  # released when the holder left
        pass


def test_the_lock_goes_with_its_process_however_it_ends(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, "r-1", str(tmp_path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunStateError, match=f"pid {holder.pid}"), run_lock("r-1", tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait(10)
    with run_lock("r-1", tmp_path):  # killed, not released by hand: the kernel dropped it
        pass


def test_a_launch_of_a_run_id_being_launched_creates_nothing(quick_bed):
    refused = pytest.raises(RunStateError, match="being launched by another launcher")
    with run_lock("held-run"), refused:
        run_stage(quick_bed.request(run_id="held-run"), quick_bed.deps())
    assert quick_bed.emulator.mutations() == []


def test_the_lock_dir_follows_the_environment(tmp_path):
    assert default_lock_dir({"LAUNCHER_LOCK_DIR": str(tmp_path)}) == tmp_path
    assert default_lock_dir({"XDG_CACHE_HOME": "/c"}).as_posix() == "/c/launcher/locks"
