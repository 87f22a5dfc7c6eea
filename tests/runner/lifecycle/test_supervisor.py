"""The supervisor with fake phases: order, final state, exit status, and that upload and
teardown happen whatever went wrong — a failed phase, a bug, a signal."""

from __future__ import annotations

import fcntl
import os
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from launcher.runner import statefiles as sf
from launcher.runner.status import PhaseFailed
from launcher.runner.supervisor import Outcome, Phases, supervise

from .conftest import make_context, make_spec, read_status


@dataclass
class Uploaded:
    verified: bool
    problems: tuple[str, ...] = ()


class Fake:
    """Phases that record their calls; ``fail`` maps a phase name to what it raises or
    (for train) returns."""

    def __init__(self, ctx, **behaviour) -> None:
        self.ctx = ctx
        self.calls: list[str] = []
        self.behaviour = behaviour
        self.outcome: Outcome | None = None
        self.teardown_verified: bool | None = None

    def _step(self, name: str, value=None):
        self.calls.append(name)
        effect = self.behaviour.get(name)
        if callable(effect):
            return effect()
        if isinstance(effect, BaseException):
            raise effect
        return value if effect is None else effect

    def phases(self) -> Phases:
        def upload(ctx, outcome):
            self.outcome = outcome
            return self._step("upload", Uploaded(True))

        def teardown(ctx, verified):
            self.teardown_verified = verified
            self.calls.append("teardown")
            self.status_at_teardown = dict(read_status(ctx.spec))
            return []

        return Phases(harden=lambda ctx: self._step("harden"),
                      prepare_volume=lambda ctx: self._step("volume"),
                      fetch_code=lambda ctx: self._step("code", Path("/code")),
                      prepare_env=lambda ctx, code_dir: self._step("env"),
                      sync_data=lambda ctx: self._step("data", {"files": 3}),
                      check_health=lambda ctx, manifest: self._step("health"),
                      train=self._train, upload=upload,
                      upload_heartbeat=lambda ctx: self.calls.append("beat-upload"),
                      teardown=teardown)

    def _train(self, ctx, code_dir, heartbeat):
        assert code_dir == Path("/code")
        heartbeat()
        return self._step("train", 0)


@pytest.fixture
def ctx(tmp_path):
    return make_context(make_spec(tmp_path))


ALL = ["harden", "volume", "code", "env", "data", "health", "beat-upload", "train", "upload",
       "teardown"]


def test_the_happy_path(ctx):
    fake = Fake(ctx)
    assert supervise(ctx, fake.phases(), signals=False) == 0
    assert fake.calls == ALL
    assert fake.teardown_verified is True
    assert fake.outcome == Outcome("succeeded", 0, "", "", {"files": 3})
    status = read_status(ctx.spec)
    assert status["state"] == "succeeded"
    assert [p["name"] for p in status["phases"]] == ["harden", "volume", "code", "env", "data",
                                                      "health", "train", "upload", "teardown"]
    assert all(p["ok"] for p in status["phases"])
    assert fake.status_at_teardown["state"] == "succeeded"  # what the last upload carries
    state = sf.StateDir(Path(ctx.spec.paths.state_dir))
    assert state.upload_verified() and state.heartbeat_age(time.time()) < 60
    assert state.path(sf.SUPERVISOR_PID).read_text().split()[0] == str(os.getpid())


def test_a_failing_phase_still_uploads_and_tears_down(ctx):
    fake = Fake(ctx, data=PhaseFailed("data", "bucket unreachable"))
    assert supervise(ctx, fake.phases(), signals=False) == 1
    assert fake.calls == ["harden", "volume", "code", "env", "data", "upload", "teardown"]
    assert fake.outcome.state == "failed" and fake.outcome.phase == "data"
    assert fake.teardown_verified is True  # what existed was uploaded: the volume can go
    status = read_status(ctx.spec)
    assert status["state"] == "failed" and status["reason"] == "data: bucket unreachable"
    assert status["phases"][4] | {"ok": False} == status["phases"][4]


def test_an_exception_in_train_is_a_failure_too(ctx):
    fake = Fake(ctx, train=lambda: 1 / 0)
    assert supervise(ctx, fake.phases(), signals=False) == 1
    assert fake.calls[-2:] == ["upload", "teardown"]
    status = read_status(ctx.spec)
    assert status["state"] == "failed"
    assert status["reason"] == "train: ZeroDivisionError: division by zero"


def test_a_non_zero_training_exit_fails_the_run(ctx):
    fake = Fake(ctx, train=3)
    assert supervise(ctx, fake.phases(), signals=False) == 1
    assert fake.outcome.exit_code == 3
    assert read_status(ctx.spec)["reason"] == "train: exit status 3"


def test_an_unverified_upload_fails_the_run_and_keeps_the_volume(ctx):
    fake = Fake(ctx, upload=Uploaded(False, ("s3://b/runs/x/: AccessDenied",)))
    assert supervise(ctx, fake.phases(), signals=False) == 1
    assert fake.teardown_verified is False
    status = read_status(ctx.spec)
    assert status["reason"] == "upload: not verified: s3://b/runs/x/: AccessDenied"
    upload_phase = next(p for p in status["phases"] if p["name"] == "upload")
    assert upload_phase["ok"] is False
    assert not sf.StateDir(Path(ctx.spec.paths.state_dir)).upload_verified()


def test_an_upload_that_raises_still_tears_down(ctx):
    fake = Fake(ctx, upload=OSError("disk gone"))
    assert supervise(ctx, fake.phases(), signals=False) == 1
    assert fake.calls[-1] == "teardown" and fake.teardown_verified is False
    assert read_status(ctx.spec)["reason"] == "upload: OSError: disk gone"


def test_sigterm_during_training_tears_down(ctx):
    def train():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # interrupted by the handler's exception
        return 0

    fake = Fake(ctx, train=train)
    before = signal.getsignal(signal.SIGTERM)
    started = time.monotonic()
    assert supervise(ctx, fake.phases()) == 1
    assert time.monotonic() - started < 4
    assert fake.calls[-2:] == ["upload", "teardown"]
    assert fake.outcome.reason == "stopped by SIGTERM"
    status = read_status(ctx.spec)
    assert status["state"] == "failed" and status["reason"] == "train: stopped by SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_signal_during_upload_does_not_stop_the_teardown(ctx):
    def upload():
        os.kill(os.getpid(), signal.SIGINT)
        return Uploaded(True)

    fake = Fake(ctx, upload=upload)
    assert supervise(ctx, fake.phases()) == 0
    assert fake.calls[-1] == "teardown"


def test_one_supervisor_at_a_time(ctx):
    state_dir = Path(ctx.spec.paths.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / "supervisor.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        fake = Fake(ctx)
        assert supervise(ctx, fake.phases(), signals=False) == 2
    finally:
        os.close(fd)
    assert fake.calls == []


def test_a_restart_after_a_verified_upload_goes_straight_to_teardown(ctx):
    sf.StateDir(Path(ctx.spec.paths.state_dir)).mark_upload_verified({"by": "test"})
    ctx.reporter.set_state("succeeded")
    fake = Fake(ctx)
    assert supervise(ctx, fake.phases(), signals=False) == 0
    assert fake.calls == ["teardown"] and fake.teardown_verified is True


def test_a_training_process_left_behind_is_stopped_before_upload(ctx, spawn):
    child = spawn(30, new_session=True)

    def train():
        sf.StateDir(Path(ctx.spec.paths.state_dir)).record_pid(sf.TRAIN_PID, child.pid)
        raise PhaseFailed("train", "lost track of the trainer")

    fake = Fake(ctx, train=train)
    assert supervise(ctx, fake.phases(), signals=False) == 1
    deadline = time.monotonic() + 5
    while child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert child.returncode == -signal.SIGTERM


def test_the_real_phases_bind_lazily():
    phases = Phases.real()
    assert phases.harden.__name__ == "hardening.harden"
    assert phases.prepare_volume.__name__ == "volume.prepare"
    assert phases.teardown.__name__ == "teardown.teardown"
    assert callable(phases.upload) and callable(phases.train)


def test_a_missing_phase_module_fails_its_phase_not_the_supervisor(ctx, monkeypatch):
    import launcher.runner.supervisor as sup

    fake = Fake(ctx)
    phases = replace(fake.phases(), prepare_volume=sup._bind("no_such_module", "prepare"))
    assert supervise(ctx, phases, signals=False) == 1
    assert fake.calls[-2:] == ["upload", "teardown"]
    assert "ModuleNotFoundError" in read_status(ctx.spec)["reason"]


def test_a_run_ends_with_nothing_billing(world):
    from launcher.runner.teardown import teardown

    from .conftest import FAST

    fake = Fake(world.ctx)
    phases = replace(fake.phases(), teardown=lambda ctx, verified: teardown(
        ctx, verified, final_upload=world.final_upload, options=FAST))
    assert supervise(world.ctx, phases, signals=False) == 0
    assert not world.block_exists() and not world.instance_exists()
    status = read_status(world.spec)
    assert status["state"] == "succeeded" and status["left_behind"] == []
    assert status["phases"][-1]["name"] == "teardown" and status["phases"][-1]["ok"]
