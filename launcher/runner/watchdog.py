"""The watchdog: an independent process that makes sure the run ends, whatever the supervisor
does. Run by a systemd timer (``watchdog --spec …`` checks once and exits) or as a loop
(``--loop``).

It acts when the run's ``deadline_epoch`` has passed, or when the supervisor is gone (no live
``supervisor.pid``) and its heartbeat is older than ``stale_after_s`` (before the first
heartbeat, the age counts from the watchdog's first look). Acting means:

1. a teardown already in progress (the supervisor's) is waited for (``teardown_wait_s``);
   then SIGKILL the supervisor (so it cannot race the watchdog's own upload), SIGTERM the
   training process group, wait ``kill_grace_s`` (a trainer may checkpoint), SIGKILL it, and
   any process of the trainer user left; reload ``status.json`` (the supervisor's last word);
2. note "watchdog: <reason>" in the status, mark the run failed (unless it already ended);
3. upload: verified if ``upload.verified`` exists, else one upload attempt bounded by
   ``upload_deadline_s``;
4. teardown with that verdict (the volume is kept unless the upload was verified).

Once a teardown has deleted the instance the watchdog does nothing; a teardown that left the
instance behind is retried on the next check.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.runner import statefiles as sf
from launcher.runner.context import Context
from launcher.runner.statefiles import StateDir

Upload = Callable[[Context, Any], Any]
Teardown = Callable[[Context, bool], list[str]]


@dataclass(frozen=True)
class WatchdogOptions:
    stale_after_s: float = 900.0
    kill_grace_s: float = 30.0
    upload_deadline_s: float = 600.0
    teardown_wait_s: float = 1800.0
    interval_s: float = 60.0


@dataclass(frozen=True)
class Verdict:
    act: bool
    reason: str


def _default_upload(ctx: Context, outcome: Any) -> Any:
    from launcher.runner.supervisor import real_upload

    return real_upload(ctx, outcome)


def _default_teardown(ctx: Context, verified: bool) -> list[str]:
    from launcher.runner import teardown

    return teardown.teardown(ctx, verified)


def _teardown_finished(state: StateDir) -> bool:
    from launcher.runner.teardown import Record

    return Record.load(state.path(sf.TEARDOWN_STATE)).instance == "deleted"


def assess(ctx: Context, opts: WatchdogOptions | None = None) -> Verdict:
    """Whether the watchdog must act now, and why."""
    opts = opts or WatchdogOptions()
    state = StateDir(Path(ctx.spec.paths.state_dir))
    if _teardown_finished(state):
        return Verdict(False, "teardown already done")
    now = ctx.wall()
    if now >= ctx.spec.deadline_epoch:
        return Verdict(True, f"deadline passed ({now - ctx.spec.deadline_epoch:.0f}s ago)")
    if state.live_pid(sf.SUPERVISOR_PID) is not None:
        return Verdict(False, "supervisor alive")
    age = state.heartbeat_age(now)
    if age is None:
        age = now - _first_seen(state, now)
    if age > opts.stale_after_s:
        return Verdict(True, f"supervisor gone, no heartbeat for {age:.0f}s")
    return Verdict(False, f"supervisor not running; heartbeat {age:.0f}s old")


def _first_seen(state: StateDir, now: float) -> float:
    path = state.path(sf.WATCHDOG_FIRST_SEEN)
    try:
        return float(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state.root.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{now}\n", encoding="utf-8")
        return now


def check_once(ctx: Context, *, upload: Upload | None = None,
               teardown: Teardown | None = None,
               opts: WatchdogOptions | None = None) -> Verdict:
    """One look; if the run must end, end it (see the module doc). Returns the verdict."""
    opts = opts or WatchdogOptions()
    verdict = assess(ctx, opts)
    if not verdict.act:
        return verdict
    state = StateDir(Path(ctx.spec.paths.state_dir))
    _await_teardown(ctx, state, opts)
    stop_run(ctx, state, opts)
    sf.resume_status(ctx.reporter)  # nobody else writes it now: start from its last word
    if _teardown_finished(state):
        return Verdict(False, "teardown already done")
    ctx.reporter.note(f"watchdog: {verdict.reason}")
    if ctx.reporter.status.state not in ("succeeded", "failed"):
        ctx.reporter.set_state("failed", f"watchdog: {verdict.reason}")
    verified = state.upload_verified() or _upload_once(ctx, state, upload or _default_upload,
                                                       opts, verdict.reason)
    (teardown or _default_teardown)(ctx, verified)
    return verdict


def _await_teardown(ctx: Context, state: StateDir, opts: WatchdogOptions) -> None:
    """A teardown in progress (the supervisor's) is let finish, up to ``teardown_wait_s``;
    one stuck longer dies with the supervisor."""
    if not _teardown_running(state):
        return
    ctx.log("watchdog: a teardown is in progress; waiting for it")
    sf.wait_until(lambda: not _teardown_running(state), opts.teardown_wait_s)


def stop_run(ctx: Context, state: StateDir, opts: WatchdogOptions) -> None:
    """SIGKILL the supervisor (it must not race the watchdog's upload), then stop training
    (SIGTERM, ``kill_grace_s``, SIGKILL)."""
    supervisor = state.live_pid(sf.SUPERVISOR_PID)
    if supervisor is not None and supervisor != os.getpid():
        gone = sf.stop(supervisor, group=False, grace_s=0.0)
        ctx.log(f"watchdog: supervisor {supervisor} {'killed' if gone else 'NOT killed'}")
    sf.stop_training(state, ctx.spec.paths.trainer_user, grace_s=opts.kill_grace_s,
                     log=lambda line: ctx.log(f"watchdog: {line}"))


def _teardown_running(state: StateDir) -> bool:
    path = state.path(sf.TEARDOWN_LOCK)
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock we took
    return False


def _upload_once(ctx: Context, state: StateDir, upload: Upload, opts: WatchdogOptions,
                 reason: str) -> bool:
    """One upload attempt in a thread, given ``upload_deadline_s``; True if verified."""
    from launcher.runner.supervisor import Outcome

    outcome = Outcome("failed", None, f"watchdog: {reason}", "watchdog")
    box: dict[str, Any] = {}

    def attempt() -> None:
        try:
            box["result"] = upload(ctx, outcome)
        except Exception as exc:  # reported below; the teardown must still happen
            box["error"] = f"{type(exc).__name__}: {exc}"

    worker = threading.Thread(target=attempt, name="watchdog-upload", daemon=True)
    worker.start()
    worker.join(opts.upload_deadline_s)
    verified = bool(getattr(box.get("result"), "verified", False))
    if worker.is_alive():
        ctx.log(f"watchdog: upload not done after {opts.upload_deadline_s:g}s")
    elif "error" in box:
        ctx.log(f"watchdog: upload failed: {box['error']}")
    if verified:
        state.mark_upload_verified({"by": "watchdog"})
    ctx.log(f"watchdog: upload verified: {verified}")
    return verified


def run_loop(ctx: Context, *, upload: Upload | None = None, teardown: Teardown | None = None,
             opts: WatchdogOptions | None = None, max_s: float | None = None) -> Verdict:
    """``check_once`` every ``interval_s`` until a teardown has deleted the instance, or for
    ``max_s`` (default: until a day past the deadline)."""
    opts = opts or WatchdogOptions()
    if max_s is None:
        max_s = max(ctx.seconds_left(), 0.0) + 86400.0
    end = ctx.clock() + max_s
    state = StateDir(Path(ctx.spec.paths.state_dir))
    while True:
        verdict = check_once(ctx, upload=upload, teardown=teardown, opts=opts)
        if _teardown_finished(state) or ctx.clock() >= end:
            return verdict
        ctx.sleep(max(min(opts.interval_s, end - ctx.clock()), 0.0))
