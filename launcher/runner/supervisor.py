"""The supervisor: runs the phases in order, then always uploads and tears down.

``harden → volume → code → env → data → health → [cluster] → train`` each inside
``reporter.phase(name)`` (between harden and volume, the SSH host keys go to the bucket: never
fatal; ``cluster`` only for a node of an N-node run, which also tells the other nodes at once
how its phases ended: see :mod:`launcher.runner.cluster`); the first
:class:`PhaseFailed`, other exception, non-zero training exit or SIGTERM/SIGINT ends that
sequence. Then, whatever happened: stop any training still running, ``upload`` (what
exists is worth uploading: logs and status at least), record the final state, ``teardown``.
Exit status 0 only when training exited 0 and the upload was verified.

For the watchdog it holds ``supervisor.lock`` (one supervisor at a time), writes
``supervisor.pid``, touches ``heartbeat`` from a thread, and writes ``upload.verified`` once
an upload is verified. A supervisor restarted after its upload was verified (or after a
teardown began) skips straight to teardown.
"""

from __future__ import annotations

import fcntl
import importlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from launcher.runner import statefiles as sf
from launcher.runner.beat import Heartbeat
from launcher.runner.context import Context
from launcher.runner.statefiles import StateDir
from launcher.runner.status import PhaseFailed

SUPERVISOR_LOCK = "supervisor.lock"
HEARTBEAT_FILE_S = 30.0
TRAIN_STOP_GRACE_S = 30.0
# Training stops this long before the deadline (at most this share of the time left when it
# starts), so the supervisor uploads and tears down before the watchdog has to.
TRAIN_RESERVE_S = 1800.0
TRAIN_RESERVE_SHARE = 0.15
# End-to-end tests only: the host's device, mount, fstab and cloud-init paths under this
# directory (see Phases.on_test_host). Honoured by ``supervise`` from the command line only
# with ``health.cpu_only``, and announced in the status notes (see cli._supervise).
TEST_HOST_ENV = "LAUNCHER_RUNNER_TEST_HOST_ROOT"


@dataclass(frozen=True)
class Outcome:
    """How the run went, handed to ``Phases.upload`` (the real binding turns it into
    ``upload.RunOutcome``).

    ``state`` is "succeeded" or "failed"; ``exit_code`` the training command's exit status
    (None if it did not finish); ``reason`` one line ("" on success); ``phase`` the phase that
    failed ("" on success); ``dataset`` what ``data.sync`` returned (None if it did not)."""

    state: str
    exit_code: int | None
    reason: str
    phase: str
    dataset: Any = None

    def to_dict(self) -> dict:
        return {"state": self.state, "exit_code": self.exit_code, "reason": self.reason,
                "phase": self.phase}


def _bind(module: str, name: str) -> Callable[..., Any]:
    """``launcher.runner.<module>.<name>``, imported when first called (a module that fails
    to import fails its phase, never the supervisor)."""
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(f"launcher.runner.{module}"), name)(*args,
                                                                                  **kwargs)

    call.__name__ = call.__qualname__ = f"{module}.{name}"
    return call


def real_upload(ctx: Context, outcome: Outcome) -> Any:
    """``upload.upload`` with the outcome as the upload module expects it."""
    upload = importlib.import_module("launcher.runner.upload")
    reason = f"{outcome.phase}: {outcome.reason}" if outcome.phase else outcome.reason
    return upload.upload(ctx, upload.RunOutcome(outcome.exit_code, reason, outcome.dataset,
                                                state=outcome.state))


def _real_train(ctx: Context, code_dir: Path, heartbeat: Callable[[], None]) -> int:
    """``train.run`` (``gang.run`` on a node of an N-node run), stopping early enough to
    leave time to upload before the deadline; on every node of a cluster at the same time."""
    if ctx.spec.cluster is not None and ctx.cluster is not None:
        gang = importlib.import_module("launcher.runner.gang")
        reserve = gang.reserve_s(ctx.cluster, ctx.spec.deadline_epoch, TRAIN_RESERVE_S,
                                 TRAIN_RESERVE_SHARE)
        return gang.run(ctx, code_dir, heartbeat, reserve_s=reserve)
    reserve = min(TRAIN_RESERVE_S, max(ctx.seconds_left(), 0.0) * TRAIN_RESERVE_SHARE)
    return _bind("train", "run")(ctx, code_dir, heartbeat, reserve_s=reserve)


def _skip(ctx: Context, *args: Any) -> None:
    return None


@dataclass(frozen=True)
class Phases:
    """The supervisor's collaborators; :meth:`real` binds the runner's modules lazily.
    ``publish_host_keys`` is no phase: it never fails the run (see ``hostkeys.publish``)."""

    harden: Callable[[Context], Any]
    prepare_volume: Callable[[Context], Any]
    fetch_code: Callable[[Context], Path]
    sync_data: Callable[[Context], Any]
    check_health: Callable[[Context, Any], Any]
    train: Callable[[Context, Path, Callable[[], None]], int]
    upload: Callable[[Context, Outcome], Any]  # returns an object with a bool ``.verified``
    upload_heartbeat: Callable[[Context], None]
    teardown: Callable[[Context, bool], list[str]]
    publish_host_keys: Callable[[Context], Any] = _skip
    prepare_env: Callable[[Context, Path], Any] = _skip
    join_cluster: Callable[[Context], Any] = _skip
    announce_end: Callable[[Context, str], Any] = _skip

    @classmethod
    def real(cls) -> Phases:
        return cls(harden=_bind("hardening", "harden"),
                   prepare_volume=_bind("volume", "prepare"),
                   fetch_code=_bind("code", "fetch"),
                   sync_data=_bind("data", "sync"),
                   check_health=_bind("health", "check"),
                   train=_real_train,
                   upload=real_upload,
                   upload_heartbeat=_bind("upload", "upload_heartbeat"),
                   teardown=_bind("teardown", "teardown"),
                   publish_host_keys=_bind("hostkeys", "publish"),
                   prepare_env=_bind("pyenv", "prepare"),
                   join_cluster=_bind("cluster", "join"),
                   announce_end=_bind("cluster", "announce_end"))

    @classmethod
    def on_test_host(cls, root: Path) -> Phases:
        """:meth:`real`, except that the volume phase finds the device, the mounts table and
        fstab under ``root`` (``dev/disk/by-id``, ``sys/block``, ``dev``, ``proc/mounts``,
        ``etc/fstab``; plain files stand in for block devices), hardening removes
        cloud-init's cached user data from ``root/var/lib/cloud``, the SSH host keys are
        read from ``root/etc/ssh`` and the cluster phase finds the network interfaces in
        ``root/sys/class/net/<name>/address``. End-to-end tests only."""
        def prepare_volume(ctx: Context) -> Any:
            volume = importlib.import_module("launcher.runner.volume")
            host = volume.HostPaths(by_id=root / "dev/disk/by-id", sys_block=root / "sys/block",
                                    dev=root / "dev", mounts=root / "proc/mounts",
                                    fstab=root / "etc/fstab", block_only=False)
            return volume.prepare(ctx, host)

        def harden(ctx: Context) -> Any:
            hardening = importlib.import_module("launcher.runner.hardening")
            # A test host (the sandbox) may run without root: there the secrets file belongs
            # to the user the runner runs as, and that is what "root-only" means.
            return hardening.harden(ctx, hardening.HardeningOptions(
                cloud_dir=root / "var/lib/cloud", owner_uid=os.geteuid()))

        def publish_host_keys(ctx: Context) -> Any:
            hostkeys = importlib.import_module("launcher.runner.hostkeys")
            return hostkeys.publish(ctx, hostkeys.HostKeyOptions(ssh_dir=root / "etc/ssh"))

        def join_cluster(ctx: Context) -> Any:
            cluster = importlib.import_module("launcher.runner.cluster")
            return cluster.join(ctx, cluster.ClusterOptions(net_dir=root / "sys/class/net"))

        return replace(cls.real(), prepare_volume=prepare_volume, harden=harden,
                       publish_host_keys=publish_host_keys, join_cluster=join_cluster)


class Terminated(BaseException):
    """SIGTERM/SIGINT arrived while the phases ran (a BaseException: no phase swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class _Signals:
    """Turns the first SIGTERM/SIGINT during the phases into :class:`Terminated`; once the
    run is ending (upload, teardown) signals are only counted, so both still happen."""

    ending: bool = False
    raised: bool = False
    received: list[int] = field(default_factory=list)

    def handle(self, signum: int, frame: object) -> None:
        self.received.append(signum)
        if not (self.ending or self.raised):
            self.raised = True
            raise Terminated(signum)

    def install(self) -> Callable[[], None]:
        """Install the handlers; returns the function that puts the old ones back."""
        previous = {s: signal.signal(s, self.handle) for s in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

        return restore


@dataclass
class _Run:
    exit_code: int | None = None
    reason: str = ""
    phase: str = ""
    dataset: Any = None

    def fail(self, phase: str, reason: str) -> None:
        """Record the first failure only: it is the cause, the rest are consequences."""
        if not self.reason:
            self.phase, self.reason = phase, reason

    def summary(self) -> str:
        """``"<phase>: <reason>"`` ("" when nothing failed)."""
        if not self.reason:
            return ""
        return f"{self.phase}: {self.reason}" if self.phase else self.reason


def supervise(ctx: Context, phases: Phases | None = None, *, signals: bool = True,
              heartbeat_s: float = HEARTBEAT_FILE_S) -> int:
    """Run the whole thing; the process exit status (0: trained and upload verified; 1:
    anything else; 2: another supervisor holds the lock)."""
    phases = phases or Phases.real()
    state = StateDir(Path(ctx.spec.paths.state_dir))
    state.root.mkdir(parents=True, exist_ok=True)
    lock_fd = os.open(state.path(SUPERVISOR_LOCK), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            ctx.log("supervisor: another supervisor is running; leaving it alone")
            return 2
        state.record_pid(sf.SUPERVISOR_PID)
        if ctx.spec.cluster is not None:
            ctx.reporter.set_node(ctx.spec.cluster.node_index, ctx.spec.cluster.nodes)
        beat = Heartbeat(ctx, state, phases.upload_heartbeat, heartbeat_s)
        beat.start()
        guard = _Signals()
        restore = guard.install() if signals else (lambda: None)
        try:
            return _supervise(ctx, phases, state, beat, guard)
        finally:
            restore()
            beat.stop()
    finally:
        os.close(lock_fd)


def _supervise(ctx: Context, phases: Phases, state: StateDir, beat: Heartbeat,
               guard: _Signals) -> int:
    run = _Run()
    resumed = state.upload_verified() or state.path(sf.TEARDOWN_STATE).exists()
    try:
        try:
            if resumed:
                ctx.reporter.note("supervisor: restarted after the upload or teardown began; "
                                  "going straight to teardown")
            else:
                _run_phases(ctx, phases, run, beat.beat)
        finally:
            guard.ending = True
    except Terminated as exc:
        run.fail(ctx.reporter.status.phase, f"stopped by {exc}")
    if ctx.spec.cluster is not None and not resumed:
        _announce_end(ctx, phases, run)
    if guard.received:
        names = ", ".join(signal.Signals(s).name for s in guard.received)
        ctx.log(f"supervisor: received {names}; finishing upload and teardown")
    _stop_training(ctx, state)
    verified = state.upload_verified() if resumed else _upload(ctx, phases, state, run)
    if resumed:
        succeeded = ctx.reporter.status.state == "succeeded"
    else:
        succeeded = run.exit_code == 0 and verified and not run.reason
    _finish(ctx, phases, run, verified, succeeded)
    return 0 if succeeded else 1


def _run_phases(ctx: Context, phases: Phases, run: _Run, heartbeat: Callable[[], None]) -> None:
    """harden → volume → code → env → data → health → [cluster] → train; the first failure
    is recorded."""
    phase = ctx.reporter.phase
    try:
        with phase("harden"):
            phases.harden(ctx)
        _publish_host_keys(ctx, phases)
        with phase("volume"):
            phases.prepare_volume(ctx)
        with phase("code"):
            code_dir = phases.fetch_code(ctx)
        with phase("env"):
            phases.prepare_env(ctx, code_dir)
        with phase("data"):
            run.dataset = phases.sync_data(ctx)
        with phase("health"):
            phases.check_health(ctx, run.dataset)
        if ctx.spec.cluster is not None:
            with phase("cluster"):
                phases.join_cluster(ctx)
        with phase("train") as record:
            run.exit_code = phases.train(ctx, code_dir, heartbeat)
            record.detail = f"exit status {run.exit_code}"
            if run.exit_code != 0:
                raise PhaseFailed("train", f"exit status {run.exit_code}")
    except PhaseFailed as exc:
        run.fail(exc.phase, exc.reason)
    except Exception as exc:  # a bug in a phase ends the run like a failure: upload, teardown
        run.fail(ctx.reporter.status.phase, f"{type(exc).__name__}: {exc}")


def _announce_end(ctx: Context, phases: Phases, run: _Run) -> None:
    """Tell the other nodes how this one ended, before the upload: they fail fast."""
    state = "failed" if run.reason or run.exit_code != 0 else "succeeded"
    try:
        phases.announce_end(ctx, state)
    except Exception as exc:  # the others then see this node's record go stale
        ctx.log(f"supervisor: final cluster state not published: {type(exc).__name__}: {exc}")


def _publish_host_keys(ctx: Context, phases: Phases) -> None:
    """For ``launcher ssh``; whatever goes wrong is a note, never the run's failure."""
    try:
        phases.publish_host_keys(ctx)
    except Exception as exc:  # e.g. the module failed to import
        ctx.reporter.note(f"ssh: host keys not published ({type(exc).__name__}: {exc})")


def _stop_training(ctx: Context, state: StateDir) -> None:
    """Backstop: no training process may outlive its phase (outputs must be final)."""
    sf.stop_training(state, ctx.spec.paths.trainer_user, grace_s=TRAIN_STOP_GRACE_S,
                     log=lambda line: ctx.log(f"supervisor: {line}"))


def _upload(ctx: Context, phases: Phases, state: StateDir, run: _Run) -> bool:
    """The upload phase; True if verified (and then ``upload.verified`` is written)."""
    outcome = Outcome("failed" if run.reason else "succeeded", run.exit_code, run.reason,
                      run.phase, run.dataset)
    verified = False
    try:
        with ctx.reporter.phase("upload") as record:
            result = phases.upload(ctx, outcome)
            verified = bool(getattr(result, "verified", False))
            if not verified:  # the phase fails with its cause, not just "not verified"
                causes = "; ".join(getattr(result, "problems", ())[:3]) or "no detail"
                raise PhaseFailed("upload", f"not verified: {causes}")
            record.detail = "verified"
    except PhaseFailed as exc:
        run.fail("upload", exc.reason)
    except Exception as exc:  # teardown must run whatever the upload did
        run.fail("upload", f"{type(exc).__name__}: {exc}")
    if verified:
        state.mark_upload_verified({"at": time.time(), "outcome": outcome.to_dict()})
    else:
        run.fail("upload", "not verified")
    return verified


def _finish(ctx: Context, phases: Phases, run: _Run, verified: bool, succeeded: bool) -> None:
    """Record the final state (so the last status upload carries it), then tear down."""
    final = "succeeded" if succeeded else "failed"
    reason = run.summary() or ctx.reporter.status.reason
    with ctx.reporter.phase("teardown") as record:
        ctx.reporter.set_state(final, "" if succeeded else (reason or "unknown"))
        try:
            left = phases.teardown(ctx, verified)
        except Exception as exc:  # teardown promises not to raise; be sure
            left = [f"teardown raised {type(exc).__name__}: {exc}"]
        record.detail = f"left behind: {len(left)}" if left else "nothing left behind"
    ctx.log(f"supervisor: {final}" + (f" ({reason})" if not succeeded and reason else ""))
