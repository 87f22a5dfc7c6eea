"""The files in ``Paths.state_dir`` through which the supervisor, the training phase, the
watchdog and teardown speak to each other, and the process helpers that read them.

- ``supervisor.pid`` / ``train.pid``: ``"<pid> <starttime>"`` (starttime from
  ``/proc/<pid>/stat``, so a pid recycled after a reboot is never mistaken for ours; a bare
  ``"<pid>"`` is accepted too). ``train.pid`` names the training process, which leads its own
  process group (``start_new_session=True``): stopping training signals the whole group.
- ``supervisor.heartbeat``: its mtime is the supervisor's last sign of life.
- ``upload.verified``: exists once an upload was verified in the bucket.
- ``teardown.lock`` / ``teardown.json``: see :mod:`launcher.runner.teardown`.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from launcher.runner.status import PhaseRecord, Reporter, Status

SUPERVISOR_PID = "supervisor.pid"
TRAIN_PID = "train.pid"
HEARTBEAT = "supervisor.heartbeat"
UPLOAD_VERIFIED = "upload.verified"
TEARDOWN_LOCK = "teardown.lock"
TEARDOWN_STATE = "teardown.json"
INSTANCE_ID = "instance-id"
WATCHDOG_FIRST_SEEN = "watchdog.first-seen"
PROC = Path("/proc")


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


@dataclass(frozen=True)
class StateDir:
    """``Paths.state_dir``, with one method per conversation."""

    root: Path

    def path(self, name: str) -> Path:
        return self.root / name

    def record_pid(self, name: str, pid: int | None = None) -> None:
        """Write ``name`` (e.g. :data:`TRAIN_PID`) for ``pid`` (default: this process)."""
        pid = os.getpid() if pid is None else pid
        start = _start_time(pid)
        _write_atomic(self.path(name), f"{pid} {start}\n" if start else f"{pid}\n")

    def live_pid(self, name: str) -> int | None:
        """The pid recorded in ``name`` if that very process is still running, else None."""
        try:
            fields = self.path(name).read_text(encoding="utf-8").split()
            pid = int(fields[0])
        except (OSError, ValueError, IndexError):
            return None
        if pid <= 1 or not alive(pid):
            return None
        if len(fields) > 1 and _start_time(pid) not in (None, fields[1]):
            return None  # recycled pid: not ours
        return pid

    def touch_heartbeat(self) -> None:
        _write_atomic(self.path(HEARTBEAT), f"{time.time():.0f}\n")

    def heartbeat_age(self, now: float) -> float | None:
        """Seconds since the last heartbeat (wall clock), None if there never was one."""
        try:
            return now - self.path(HEARTBEAT).stat().st_mtime
        except FileNotFoundError:
            return None

    def mark_upload_verified(self, detail: dict) -> None:
        _write_atomic(self.path(UPLOAD_VERIFIED), json.dumps(detail, sort_keys=True) + "\n")

    def upload_verified(self) -> bool:
        return self.path(UPLOAD_VERIFIED).is_file()


def resume_status(reporter: Reporter) -> None:
    """Load ``status.json`` into ``reporter`` (a watchdog, a restarted supervisor or a
    command-line teardown carries on from it instead of overwriting it with an empty one)."""
    try:
        data = json.loads(reporter.status_path.read_text(encoding="utf-8"))
        phases = [PhaseRecord(**record) for record in data.pop("phases", [])]
        status = Status(**data, phases=phases)
    except (OSError, ValueError, TypeError, AttributeError):
        return
    if status.run_id == reporter.status.run_id:
        reporter.status = status


# -- processes --------------------------------------------------------------------------------

def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` from the state field on (so index 0 = state, 2 = pgrp), or None."""
    try:
        text = (PROC / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _start_time(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[19] if fields and len(fields) > 19 else None


def alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie counts as gone)."""
    fields = _stat_fields(pid)
    if fields is not None:
        return fields[0] not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not PROC.is_dir()  # /proc exists but not this pid: gone


def group_alive(pgid: int) -> bool:
    """True while any non-zombie process is in process group ``pgid``."""
    if not PROC.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in "ZX":
                return True
    return False


def pids_of_user(uid: int) -> list[int]:
    """Every running process whose real uid is ``uid`` (from ``/proc/<pid>/status``)."""
    found = []
    entries = PROC.iterdir() if PROC.is_dir() else iter(())
    for entry in (e for e in entries if e.name.isdigit()):
        try:
            status = (entry / "status").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        uids = next((line.split()[1:] for line in status.splitlines()
                     if line.startswith("Uid:")), [])
        if uids[:1] == [str(uid)] and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def stop_user(uid: int, *, grace_s: float) -> list[int]:
    """SIGTERM every process of ``uid``, SIGKILL what remains after ``grace_s``; the pids
    that survived. Refuses root and the caller's own uid."""
    if uid in (0, os.getuid(), os.geteuid()):
        raise ValueError(f"refusing to stop every process of uid {uid}")
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        for pid in pids_of_user(uid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if _wait(lambda: not pids_of_user(uid), wait_s, time.monotonic, time.sleep):
            return []
    return pids_of_user(uid)


def stop(pid: int, *, group: bool, grace_s: float,
         clock: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep) -> bool:
    """SIGTERM ``pid`` (its whole group if ``group``), wait up to ``grace_s``, then SIGKILL
    (at once when ``grace_s`` is 0). True once it is gone."""
    def gone() -> bool:
        return not (group_alive(pid) if group else alive(pid))

    def send(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig) if group else os.kill(pid, sig)

    if grace_s > 0:
        send(signal.SIGTERM)
        if _wait(gone, grace_s, clock, sleep):
            return True
    send(signal.SIGKILL)
    return _wait(gone, 10.0, clock, sleep)


def wait_until(done: Callable[[], bool], seconds: float) -> bool:
    """Poll ``done`` (backoff 0.05 s → 1 s) for up to ``seconds``; its last answer."""
    return _wait(done, seconds, time.monotonic, time.sleep)


def _wait(done: Callable[[], bool], seconds: float, clock: Callable[[], float],
          sleep: Callable[[float], None]) -> bool:
    deadline = clock() + seconds
    delay = 0.05
    while not done():
        if clock() >= deadline:
            return False
        sleep(min(delay, max(deadline - clock(), 0.0)))
        delay = min(delay * 2, 1.0)
    return True


def stop_training(state: StateDir, trainer_user: str, *, grace_s: float,
                  log: Callable[[str], None]) -> None:
    """Stop training for good: the group in ``train.pid``, then every process of the trainer
    user (a daemonised child may have left the group). Logs what it did."""
    leader = state.live_pid(TRAIN_PID)
    if leader is not None and leader != os.getpid():
        gone = stop(leader, group=True, grace_s=grace_s)
        log(f"training group {leader} {'stopped' if gone else 'NOT stopped'}")
    try:
        uid = pwd.getpwnam(trainer_user).pw_uid
    except KeyError:
        return
    if uid in (0, os.getuid(), os.geteuid()) or not pids_of_user(uid):
        return
    survivors = stop_user(uid, grace_s=grace_s)
    log(f"processes of {trainer_user} stopped" if not survivors
        else f"processes of {trainer_user} NOT stopped: {survivors}")
