"""The train phase: run the stage's command as the unprivileged trainer, and keep it honest.

- The command is ``spec.command`` exactly as given, an argv list: no shell ever sees it.
- It runs as ``spec.paths.trainer_user`` (created if missing) via Popen's ``user``/``group``/
  ``extra_groups=[]`` — no su, sudo or shell — in its own session, so on the deadline the whole
  process group (data-loader workers, torchrun children) gets SIGTERM, then SIGKILL after a
  grace period.
- Its environment is built from nothing (root's is not inherited): see :func:`trainer_env`.
  The only secret it receives is ``WANDB_API_KEY``; the Vultr and B2 keys never reach it.
- stdout and stderr go to ``<paths.log_dir>/train.log`` (appended, root-owned 0640, beside
  ``runner.log`` and ``health.json``): the upload phase ships ``log_dir``; nothing is mirrored
  to the volume's ``logs/``.
- ``heartbeat()`` is called every ``spec.heartbeat_s`` seconds and once at the end; one that
  raises is logged and training goes on.
- A node of an N-node run passes a :class:`Launch` (:mod:`launcher.runner.gang`): its argv
  (e.g. under torchrun), extra environment, and a watch whose ``check()`` every
  ``watch.every_s`` seconds names a lost peer; then training stops (the process group, then
  every process of the trainer user) and the phase fails with ``cluster: <why>``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from launcher.runner import users
from launcher.runner.context import Context
from launcher.runner.spec import SECRET_NAMES, RunSecrets, RunSpec
from launcher.runner.statefiles import TRAIN_PID, StateDir, stop_training
from launcher.runner.status import PhaseFailed, utc_now

GRACE_S = 30.0
# A lost peer: the survivors fail fast (their collectives will never complete anyway).
LOST_GRACE_S = 10.0
KILL_WAIT_S = 30.0
MIN_WAIT_S = 0.05
TAG_MAX = 64
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Caches live on the volume: big, rebuilt cheaply, and worth keeping on a kept volume.
CACHE_DIRS = {
    "XDG_CACHE_HOME": "xdg", "TORCH_HOME": "torch", "HF_HOME": "huggingface",
    "TORCHINDUCTOR_CACHE_DIR": "torchinductor", "TRITON_CACHE_DIR": "triton",
    "CUDA_CACHE_PATH": "nv", "WANDB_CACHE_DIR": "wandb-cache", "TMPDIR": "tmp",
}
# W&B's run folders (an offline run to `wandb sync` later) sit beside the outputs, not in
# the cache, so a stage can upload them (upload_dirs: [..., wandb]).
WANDB_DIR = "wandb"
TRAINER_DIRS = ("cache", "checkpoints", "reports", WANDB_DIR)


class Watch(Protocol):
    """Looked at every ``every_s`` seconds while training runs: ``check()`` returns why
    training must stop ("" to go on)."""

    @property
    def every_s(self) -> float: ...

    def check(self) -> str: ...


@dataclass(frozen=True)
class Launch:
    """How a node of an N-node run starts its command: ``argv`` instead of the spec's
    command, ``env`` on top of :func:`trainer_env`, and a :class:`Watch`."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    watch: Watch | None = None


class _Lost(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Task:
    every: float
    due: float
    action: Callable[[], str]


def wandb_tags(spec: RunSpec) -> tuple[str, ...]:
    """The spec's tags, then ``key=value`` facts of the placement; empty values skipped,
    commas (WANDB_TAGS' separator) replaced, each cut to W&B's 64 characters, deduplicated."""
    place = spec.placement
    facts = (("environment", place.provider), ("region", place.region), ("plan", place.plan),
             ("gpu", place.gpu_type),
             ("snapshot", place.snapshot_description or place.snapshot_id),
             ("git_sha", place.git_sha or spec.code.git_commit), ("stage", spec.stage))
    raw = [*spec.wandb.tags, *(f"{key}={value}" for key, value in facts if value.strip())]
    tags = (" ".join(tag.replace(",", "_").split())[:TAG_MAX] for tag in raw)
    return tuple(dict.fromkeys(tag for tag in tags if tag))


def cache_env(mount: str | Path) -> dict[str, str]:
    return {**{name: str(Path(mount, "cache", sub)) for name, sub in CACHE_DIRS.items()},
            "WANDB_DIR": str(Path(mount, WANDB_DIR))}


def trainer_env(spec: RunSpec, secrets: RunSecrets, user: users.User, *,
                path: str = DEFAULT_PATH, stop_epoch: float | None = None,
                venv: Path | None = None) -> dict[str, str]:
    """The trainer's whole environment. The spec's ``env`` overrides the defaults but not the
    ``LAUNCHER_*`` variables; secret names in it are dropped, and only ``WANDB_API_KEY`` (from
    ``secrets``) is ever added. ``LAUNCHER_DEADLINE_EPOCH`` is when the command will get
    SIGTERM, so it can checkpoint first; without a W&B key, ``online`` becomes ``offline``.
    ``venv`` (the env phase's environment) comes first on ``PATH``, as activating it would."""
    mount = Path(spec.volume.mount_point)
    wandb_key = secrets.get("WANDB_API_KEY")
    mode = spec.wandb.mode or "online"
    path = path or DEFAULT_PATH
    if venv is not None:
        path = f"{venv / 'bin'}:{path}"
    env = {"PATH": path, "VIRTUAL_ENV": str(venv or ""), "LANG": "C.UTF-8", "HOME": user.home,
           "USER": user.name, "LOGNAME": user.name, "PYTHONUNBUFFERED": "1",
           **cache_env(mount),
           "WANDB_PROJECT": spec.wandb.project, "WANDB_ENTITY": spec.wandb.entity,
           "WANDB_MODE": "offline" if mode == "online" and not wandb_key else mode,
           "WANDB_RUN_GROUP": spec.run_id, "WANDB_TAGS": ",".join(wandb_tags(spec))}
    env = {k: v for k, v in env.items() if v}
    env.update((k, v) for k, v in spec.env
               if k not in SECRET_NAMES and not k.startswith("LAUNCHER_"))
    stop = spec.deadline_epoch if stop_epoch is None else stop_epoch
    env.update(LAUNCHER_RUN_ID=spec.run_id, LAUNCHER_STAGE=spec.stage,
               LAUNCHER_DATA_DIR=str(mount / "data"),
               LAUNCHER_CHECKPOINT_DIR=str(mount / "checkpoints"),
               LAUNCHER_REPORT_DIR=str(mount / "reports"),
               LAUNCHER_GPU_COUNT=str(spec.placement.gpu_count or spec.health.min_gpus),
               LAUNCHER_DEADLINE_EPOCH=f"{stop:.0f}")
    if wandb_key:
        env["WANDB_API_KEY"] = wandb_key
    return env


def resolve_workdir(code_dir: str | Path, workdir: str) -> Path:
    """``code_dir / workdir``, refused if it escapes ``code_dir`` (``..``, absolute, symlink)."""
    base = Path(code_dir).resolve()
    target = (base / workdir).resolve()
    if target != base and base not in target.parents:
        raise PhaseFailed("train", f"workdir {workdir!r} escapes the code directory")
    if not target.is_dir():
        raise PhaseFailed("train", f"workdir {workdir!r} is not a directory in the code")
    return target


def run(ctx: Context, code_dir: str | Path, heartbeat: Callable[[], None], *,
        reserve_s: float = 0.0, grace_s: float = GRACE_S, launch: Launch | None = None) -> int:
    """Run the stage's command (or ``launch.argv``) as the trainer until it exits, the
    deadline less ``reserve_s`` (time the supervisor keeps for the upload) passes, or
    ``launch.watch`` names a lost peer (PhaseFailed ``cluster``); return its exit status
    (negative: killed by that signal, as Popen reports it)."""
    spec = ctx.spec
    stop_epoch = spec.deadline_epoch - reserve_s
    if stop_epoch - ctx.wall() <= 0:
        raise PhaseFailed("train", "no time left before the deadline")
    workdir = resolve_workdir(code_dir, spec.workdir)
    user = users.ensure(spec.paths.trainer_user, ctx.base_env)
    _prepare_dirs(ctx, user)
    venv = ctx.python_env.path if ctx.python_env is not None else None
    env = trainer_env(spec, ctx.secrets, user, path=ctx.base_env.get("PATH", DEFAULT_PATH),
                      stop_epoch=stop_epoch, venv=venv)
    _note_wandb(ctx, env)
    argv = list(launch.argv) if launch else list(spec.command)
    proc = _start(ctx, workdir, {**env, **(launch.env if launch else {})}, user, argv)
    try:
        code = _supervise(ctx, proc, _tasks(ctx, heartbeat, launch), stop_epoch, grace_s)
    except _Lost as lost:
        _stop_lost(ctx, proc, lost.reason, grace_s)
        raise PhaseFailed("cluster", lost.reason) from None
    finally:
        if proc.poll() is None:  # an exception above: never leave it running
            _stop(proc, grace_s=0)
        _signal_group(proc, signal.SIGTERM)  # leftovers the command did not reap
    _beat(ctx, heartbeat)
    ctx.log(f"train: {argv[0]} exited with status {code}")
    return code


def _note_wandb(ctx: Context, env: dict[str, str]) -> None:
    if env.get("WANDB_MODE") != (ctx.spec.wandb.mode or "online"):
        ctx.reporter.note("train: no WANDB_API_KEY; W&B runs offline")
    elif env.get("WANDB_MODE") == "disabled":  # e.g. a UPS stage without a key: no offline
        ctx.reporter.note("train: W&B is off for this run (wandb.mode disabled)")


def _tasks(ctx: Context, heartbeat: Callable[[], None], launch: Launch | None) -> list[_Task]:
    """The heartbeat every ``spec.heartbeat_s``; the watch (if any) at once, then every
    ``watch.every_s``."""
    every = max(1.0, float(ctx.spec.heartbeat_s))
    now = ctx.clock()
    tasks = [_Task(every, now + every, lambda: _beat(ctx, heartbeat) or "")]
    if launch is not None and launch.watch is not None:
        tasks.append(_Task(launch.watch.every_s, now, launch.watch.check))
    return tasks


def _stop_lost(ctx: Context, proc: subprocess.Popen, reason: str, grace_s: float) -> None:
    """Stop the trainer's process group, then every process of the trainer user (torchrun's
    workers run in sessions of their own, outside the group)."""
    grace = min(grace_s, LOST_GRACE_S)
    ctx.reporter.note(f"train: {reason}; stopping the training (SIGTERM, SIGKILL after "
                      f"{grace:g}s)")
    with contextlib.suppress(PhaseFailed):
        _stop(proc, grace)
    stop_training(StateDir(Path(ctx.spec.paths.state_dir)), ctx.spec.paths.trainer_user,
                  grace_s=grace, log=lambda line: ctx.log(f"train: {line}"))


def _prepare_dirs(ctx: Context, user: users.User) -> None:
    for path in cache_env(ctx.mount).values():
        Path(path).mkdir(parents=True, exist_ok=True)
    linked = (target for _, target in ctx.spec.code_links)
    caches = (f"data/{s.dest}" for s in ctx.spec.data_sources if s.writable and s.dest)
    users.hand_over((ctx.mount / name.strip("/")
                     for name in (*TRAINER_DIRS, *linked, *caches)), user)


def _identity(user: users.User) -> dict:
    """Popen's arguments that drop to ``user``; none when already running as that user."""
    if os.geteuid() == user.uid:
        return {}
    if os.geteuid() != 0:
        raise PhaseFailed("train", f"not root: cannot run as {user.name}")
    return {"user": user.uid, "group": user.gid, "extra_groups": []}


def _start(ctx: Context, workdir: Path, env: dict[str, str], user: users.User,
           argv: list[str]) -> subprocess.Popen:
    log_path = Path(ctx.spec.paths.log_dir) / "train.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    with os.fdopen(fd, "ab") as log:
        log.write(f"=== {utc_now()} launcher: {json.dumps(argv)} as {user.name} "
                  f"in {workdir}\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, close_fds=True,
                                    start_new_session=True, umask=0o022, **_identity(user))
        except (OSError, subprocess.SubprocessError) as exc:
            raise PhaseFailed("train", f"cannot start {argv[0]}: {exc}") from None
    # The watchdog stops the whole process group through this pid if the supervisor hangs.
    StateDir(Path(ctx.spec.paths.state_dir)).record_pid(TRAIN_PID, proc.pid)
    ctx.log(f"train: started {argv[0]} as {user.name} (pid {proc.pid}); output in {log_path}")
    return proc


def _supervise(ctx: Context, proc: subprocess.Popen, tasks: list[_Task],
               stop_epoch: float, grace_s: float) -> int:
    """Wait for ``proc`` in slices no longer than the next task or the deadline, running
    each task when due; bounded by the deadline. A task's reason raises :class:`_Lost`."""
    while proc.poll() is None:
        left = stop_epoch - ctx.wall()
        if left <= 0:
            ctx.reporter.note(f"train: deadline reached; stopping {proc.args[0]} "
                              f"(SIGTERM, SIGKILL after {grace_s:g}s)")
            return _stop(proc, grace_s)
        now = ctx.clock()
        due = [task for task in tasks if task.due <= now]
        for task in due:
            task.due = now + task.every
            reason = task.action()
            if reason:
                raise _Lost(reason)
        if due:
            continue
        until = min(task.due for task in tasks) - now
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(MIN_WAIT_S, min(left, until)))
    return proc.returncode


def _beat(ctx: Context, heartbeat: Callable[[], None]) -> None:
    try:
        heartbeat()
    except Exception as exc:  # a status upload failing must never stop the training
        ctx.log(f"train: heartbeat failed, training goes on: {type(exc).__name__}: {exc}")


def _stop(proc: subprocess.Popen, grace_s: float) -> int:
    _signal_group(proc, signal.SIGTERM)
    try:
        return proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(proc, signal.SIGKILL)
    try:
        return proc.wait(timeout=KILL_WAIT_S)
    except subprocess.TimeoutExpired:
        raise PhaseFailed("train", f"pid {proc.pid} survived SIGKILL") from None


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Signal the command's whole process group (its own session: pgid == pid)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
