"""The watchdog: nothing before the deadline while the supervisor lives; after it (or when the
supervisor died), kill what runs, upload once if need be, and tear down."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from launcher.runner import statefiles as sf
from launcher.runner.teardown import teardown
from launcher.runner.watchdog import WatchdogOptions, assess, check_once, run_loop

from .conftest import FAST, make_context, make_spec, read_status

OPTS = WatchdogOptions(stale_after_s=600, kill_grace_s=5, upload_deadline_s=2, interval_s=0.01)


@dataclasses.dataclass
class Uploaded:
    verified: bool


class Recorder:
    def __init__(self, verified: bool = False) -> None:
        self.verified = verified
        self.uploads: list[object] = []
        self.teardowns: list[bool] = []

    def upload(self, ctx, outcome):
        self.uploads.append(outcome)
        return Uploaded(self.verified)

    def teardown(self, ctx, verified):
        self.teardowns.append(verified)
        return []


def state_of(ctx) -> sf.StateDir:
    state = sf.StateDir(Path(ctx.spec.paths.state_dir))
    state.root.mkdir(parents=True, exist_ok=True)
    return state


def wait_dead(proc, seconds: float = 5.0) -> int | None:
    deadline = time.monotonic() + seconds
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return proc.returncode


@pytest.fixture
def live(tmp_path):
    return make_context(make_spec(tmp_path, deadline_epoch=time.time() + 3600))


@pytest.fixture
def overdue(tmp_path):
    return make_context(make_spec(tmp_path, deadline_epoch=time.time() - 5))


def test_before_the_deadline_with_a_live_supervisor_nothing_happens(live, spawn):
    supervisor = spawn(30)
    state = state_of(live)
    state.record_pid(sf.SUPERVISOR_PID, supervisor.pid)
    state.touch_heartbeat()
    rec = Recorder()
    verdict = check_once(live, upload=rec.upload, teardown=rec.teardown, opts=OPTS)
    assert not verdict.act and verdict.reason == "supervisor alive"
    assert rec.uploads == rec.teardowns == [] and supervisor.poll() is None


def test_the_deadline_kills_supervisor_and_training_then_tears_down(overdue, spawn):
    supervisor, trainer = spawn(30), spawn(30, new_session=True)
    state = state_of(overdue)
    state.record_pid(sf.SUPERVISOR_PID, supervisor.pid)
    state.record_pid(sf.TRAIN_PID, trainer.pid)
    state.touch_heartbeat()
    rec = Recorder(verified=False)
    verdict = check_once(overdue, upload=rec.upload, teardown=rec.teardown, opts=OPTS)
    assert verdict.act and verdict.reason.startswith("deadline passed")
    assert wait_dead(supervisor) == -signal.SIGKILL
    assert wait_dead(trainer) == -signal.SIGTERM  # a chance to checkpoint first
    assert len(rec.uploads) == 1 and rec.teardowns == [False]
    status = read_status(overdue.spec)
    assert status["state"] == "failed" and status["reason"].startswith("watchdog: deadline")
    assert any(n.startswith("watchdog: deadline passed") for n in status["notes"])


def test_a_verified_upload_is_not_repeated(overdue):
    state_of(overdue).mark_upload_verified({"by": "supervisor"})
    rec = Recorder()
    check_once(overdue, upload=rec.upload, teardown=rec.teardown, opts=OPTS)
    assert rec.uploads == [] and rec.teardowns == [True]


def test_its_own_verified_upload_lets_the_volume_go(overdue):
    rec = Recorder(verified=True)
    check_once(overdue, upload=rec.upload, teardown=rec.teardown, opts=OPTS)
    assert rec.teardowns == [True] and state_of(overdue).upload_verified()
    assert rec.uploads[0].reason.startswith("watchdog: deadline passed")


def test_an_upload_that_hangs_is_given_up_on(overdue):
    release = threading.Event()
    rec = Recorder()

    def hang(ctx, outcome):
        release.wait(10)
        return Uploaded(True)

    opts = dataclasses.replace(OPTS, upload_deadline_s=0.2)
    try:
        check_once(overdue, upload=hang, teardown=rec.teardown, opts=opts)
    finally:
        release.set()
    assert rec.teardowns == [False]


def test_an_upload_that_raises_keeps_the_volume(overdue):
    rec = Recorder()

    def broken(ctx, outcome):
        raise OSError("no route to bucket")

    check_once(overdue, upload=broken, teardown=rec.teardown, opts=OPTS)
    assert rec.teardowns == [False]


def test_a_dead_supervisor_is_noticed_once_its_heartbeat_is_stale(live):
    state = state_of(live)
    state.touch_heartbeat()
    assert not assess(live, OPTS).act
    old = time.time() - 601
    os.utime(state.path(sf.HEARTBEAT), (old, old))
    verdict = assess(live, OPTS)
    assert verdict.act and verdict.reason.startswith("supervisor gone")


def test_a_supervisor_that_never_started_is_noticed_too(live):
    now = [time.time()]
    ctx = dataclasses.replace(live, wall=lambda: now[0])
    assert not assess(ctx, OPTS).act  # first look: the clock starts
    now[0] += 601
    assert assess(ctx, OPTS).act


def test_a_recycled_pid_is_not_ours(live, spawn):
    other = spawn(30)
    state = state_of(live)
    state.path(sf.SUPERVISOR_PID).write_text(f"{other.pid} 1\n")  # wrong start time
    assert state.live_pid(sf.SUPERVISOR_PID) is None
    state.record_pid(sf.SUPERVISOR_PID, other.pid)
    assert state.live_pid(sf.SUPERVISOR_PID) == other.pid


def test_end_to_end_against_the_emulator(world):
    spec = dataclasses.replace(world.spec, deadline_epoch=time.time() - 1)
    ctx = make_context(spec)
    rec = Recorder(verified=False)

    def real_teardown(ctx, verified):
        return teardown(ctx, verified, final_upload=world.final_upload, options=FAST)

    verdict = run_loop(ctx, upload=rec.upload, teardown=real_teardown, opts=OPTS, max_s=10)
    assert verdict.act
    assert world.block_exists() and not world.instance_exists()  # not verified: kept
    assert len(read_status(spec)["left_behind"]) == 1
    again = check_once(ctx, upload=rec.upload, teardown=real_teardown, opts=OPTS)
    assert not again.act and again.reason == "teardown already done"
    assert len(rec.uploads) == 1


def test_the_loop_is_bounded(live):
    rec = Recorder()
    started = time.monotonic()
    verdict = run_loop(live, upload=rec.upload, teardown=rec.teardown, opts=OPTS, max_s=0.1)
    assert not verdict.act and time.monotonic() - started < 2


@pytest.mark.need(os.geteuid() == 0, "needs root to create a user")
def test_every_process_of_the_trainer_user_is_stopped(tmp_path):
    import secrets
    import subprocess

    name = f"lw{secrets.token_hex(5)}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    name], check=True, capture_output=True, timeout=60)
    escaped = None
    try:
        uid = __import__("pwd").getpwnam(name).pw_uid
        escaped = subprocess.Popen(["sleep", "30"], user=uid, start_new_session=True)
        threading.Thread(target=escaped.wait, daemon=True).start()
        lines: list[str] = []
        sf.stop_training(sf.StateDir(tmp_path), name, grace_s=5, log=lines.append)
        assert wait_dead(escaped) == -signal.SIGTERM
        assert lines == [f"processes of {name} stopped"]
        with pytest.raises(ValueError, match="refusing"):
            sf.stop_user(os.getuid(), grace_s=1)
    finally:
        if escaped is not None and escaped.poll() is None:
            escaped.kill()
        subprocess.run(["userdel", name], capture_output=True, timeout=60, check=False)


def test_a_teardown_in_progress_is_waited_for_and_its_status_kept(overdue):
    import fcntl

    state = state_of(overdue)
    writer = make_context(overdue.spec)  # the supervisor, writing as it tears down
    fd = os.open(state.path(sf.TEARDOWN_LOCK), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)

    def supervisor_finishes():
        time.sleep(0.3)
        writer.reporter.left_behind("volume v kept: upload not verified")
        os.close(fd)

    finisher = threading.Thread(target=supervisor_finishes)
    finisher.start()
    rec = Recorder()
    started = time.monotonic()
    check_once(overdue, upload=rec.upload, teardown=rec.teardown, opts=OPTS)
    finisher.join()
    assert time.monotonic() - started >= 0.3
    status = read_status(overdue.spec)
    assert status["left_behind"] == ["volume v kept: upload not verified"]
    assert any(n.startswith("watchdog: deadline passed") for n in status["notes"])
