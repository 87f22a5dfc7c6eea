""":class:`ProcessHypervisor`: the emulator's machines, played by local processes.

When the emulator creates an instance, the backend "boots" it: a background thread writes
the document's files under ``<root_dir>/<instance-id>/host/`` (see :mod:`.boot`) and starts
the REAL runner from the document — ``<python> <host>/opt/launcher/runner.pyz supervise
--spec <host>/etc/launcher/run.json`` — in its own session, with the fake machine tools
first on PATH and ``LAUNCHER_RUNNER_TEST_HOST_ROOT=<host>``. Attaching a volume hot-plugs a
sparse file as ``/dev/vdX`` with its by-id link and sysfs serial; the runner then mounts,
syncs, trains, uploads to the bucket and deletes its volume and itself through the emulator.

Hook contract (the emulator's): hooks run under the emulator's state lock, so each one only
touches files or starts a thread and returns at once; none raises for a machine problem
(that would roll the API change back) — a machine that cannot boot is marked ``failed`` with
its reason, logged loudly. Deleting an instance gives its runner ``delete_grace_s`` to exit,
then stops its process group (SIGTERM, SIGKILL after ``stop_grace_s``) and the training
group. :meth:`ProcessHypervisor.close` stops everything, bounded, and the metadata server.

The trainer account (``trainer_user``): the runner never trains as uid 0, and the sandbox
never creates accounts. Not root: the current user (the runner then starts the command
without changing user). Root: ``nobody`` by default — the runner's supervisor stops every
process of its trainer user after training, so a machine is refused while that user has
processes running, and ``root_dir`` must be reachable by it (no 0700 directory above).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from launcher.emulator.records import Block, Instance
from launcher.runner import statefiles
from launcher.sandbox.boot import BootRefused, Launch, Settings, prepare
from launcher.sandbox.local import (
    check_trainer,
    default_python,
    default_trainer_user,
    find_s5cmd,
    popen,
    works_in,
)
from launcher.sandbox.machine import (
    attach_device,
    detach_device,
    install_tools,
    make_dirs,
    set_aside,
)
from launcher.sandbox.metadata import MetadataServer
from launcher.sandbox.status import MachineViews

LOGGER = logging.getLogger("launcher.sandbox")
DELETE_GRACE_S = 15.0
STOP_GRACE_S = 10.0
JOIN_S = 15.0
FINAL = ("exited", "killed", "failed")


@dataclass(frozen=True)
class MachineState:
    """One machine as the demo shows it. ``state``: booting, running, exited (on its own,
    ``exit_code``), killed (stopped by the sandbox), failed (never ran: ``reason``)."""

    instance_id: str
    state: str
    pid: int | None
    exit_code: int | None
    reason: str
    console: Path
    sandbox: Path

    def __str__(self) -> str:
        if self.state in ("exited", "killed") and self.exit_code is not None:
            return f"{self.instance_id}: {self.state}({self.exit_code})"
        return f"{self.instance_id}: {self.state}" + (f" ({self.reason})" if self.reason else "")


@dataclass
class _Machine:
    instance_id: str
    dir: Path
    state: str = "booting"
    reason: str = ""
    proc: subprocess.Popen | None = None
    exit_code: int | None = None
    state_dir: Path | None = None
    signalled: bool = False
    deleted: bool = False
    devices: dict[str, tuple[str, str]] = field(default_factory=dict)
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def host(self) -> Path:
        return self.dir / "host"

    @property
    def console(self) -> Path:
        return self.dir / "console.log"


class ProcessHypervisor(MachineViews[MachineState]):
    """The emulator's :class:`~launcher.emulator.Hypervisor`, backed by local processes
    under ``root_dir``. ``python`` runs the runner (default :func:`default_python`),
    ``s5cmd`` is handed to it (default :func:`find_s5cmd`), ``log`` receives one line per
    event (default: the ``launcher.sandbox`` logger). Use as a context manager.

    Raises ValueError when ``trainer_user`` (default :func:`default_trainer_user`) cannot
    train here: no such account, uid 0, or ``root_dir`` out of its reach."""

    final_states = FINAL

    def __init__(self, root_dir: str | Path, *, python: str | None = None,
                 s5cmd: str | None = None, trainer_user: str | None = None,
                 log: Callable[[str], None] | None = None,
                 delete_grace_s: float = DELETE_GRACE_S,
                 stop_grace_s: float = STOP_GRACE_S) -> None:
        self.root = Path(root_dir).resolve()
        make_dirs(self.root)
        self.python = python or default_python()
        self.s5cmd = s5cmd if s5cmd is not None else find_s5cmd()
        self.trainer_user = trainer_user or default_trainer_user()
        self.delete_grace_s, self.stop_grace_s = delete_grace_s, stop_grace_s
        self._log = log or LOGGER.info
        self._trainer_uid = check_trainer(self.trainer_user, self.root)
        self._lock = threading.Lock()
        self._machines: dict[str, _Machine] = {}
        self._metadata = MetadataServer()
        self._bin: Path | None = None
        self._blocks_seen: set[str] = set()
        self._closed = False

    def __enter__(self) -> ProcessHypervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the emulator's hooks (under its lock: quick, never raising for a machine) -------------

    def instance_created(self, instance: Instance) -> None:
        """Register the machine and boot it in a background thread."""
        machine = _Machine(instance.id, self.root / instance.id)
        with self._lock:
            self._machines[instance.id] = machine
            problem = "the sandbox backend is closed" if self._closed else ""
        try:
            set_aside(machine.dir)  # an earlier session's machine (a seeded emulator's id)
        except OSError as exc:
            problem = problem or f"cannot set aside an earlier {machine.dir}: {exc}"
        if problem:
            self._fail(machine, problem)
            return
        self._log(f"sandbox {instance.id}: booting in {machine.dir}")
        self._spawn(machine, "boot", self._boot, machine, instance)

    def volume_attached(self, instance: Instance, block: Block) -> None:
        """Hot-plug the block's sparse backing file as the machine's next ``/dev/vdX``."""
        with self._lock:
            machine = self._machines.get(instance.id)
            if machine is None or machine.state == "failed":
                return
            try:
                name = attach_device(self.root, machine.host, block.id, block.mount_id,
                                     fresh=block.id not in self._blocks_seen)
                self._blocks_seen.add(block.id)
            except OSError as exc:
                self._log(f"sandbox {instance.id}: ERROR: cannot attach {block.id}: {exc}")
                return
            machine.devices[block.id] = (name, block.mount_id)
        self._log(f"sandbox {instance.id}: attached {block.id} as /dev/{name} "
                  f"(serial {block.mount_id[:20]})")

    def volume_detached(self, instance: Instance, block: Block) -> None:
        """Unplug the device (its backing file, the volume's data, stays)."""
        with self._lock:
            machine = self._machines.get(instance.id)
            device = machine.devices.pop(block.id, None) if machine else None
            if machine is None or device is None:
                return
            with contextlib.suppress(OSError):
                detach_device(machine.host, *device)
        self._log(f"sandbox {instance.id}: detached {block.id} (/dev/{device[0]})")

    def instance_deleted(self, instance: Instance) -> None:
        """The instance is gone: let its runner finish, then stop what is left."""
        with self._lock:
            machine = self._machines.get(instance.id)
            if machine is None:
                return
            machine.deleted = True
        self._metadata.forget(instance.id)
        self._log(f"sandbox {instance.id}: instance deleted")
        self._spawn(machine, "delete", self._after_delete, machine)

    # -- status -----------------------------------------------------------------------------

    @property
    def _entries(self) -> dict[str, _Machine]:
        return self._machines

    def _view(self, m: _Machine) -> MachineState:
        with self._lock:
            return MachineState(m.instance_id, m.state, m.proc.pid if m.proc else None,
                                m.exit_code, m.reason, m.console, m.dir)

    # -- closing ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every machine (SIGTERM, SIGKILL after ``stop_grace_s``; the training group
        too) and the metadata server. Bounded; idempotent."""
        with self._lock:
            self._closed = True
            machines = list(self._machines.values())
        self._join(machines, "sandbox-boot")
        stoppers = [threading.Thread(target=self._stop, args=(m,), daemon=True)
                    for m in machines if m.proc is not None]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join(self.stop_grace_s + JOIN_S)
        self._join(machines, "sandbox-reap")  # so the states say how each one ended
        self._metadata.stop()

    @staticmethod
    def _join(machines: list[_Machine], prefix: str) -> None:
        for machine in machines:
            for thread in list(machine.threads):
                if thread.name.startswith(prefix):
                    thread.join(JOIN_S)

    # -- machine life -----------------------------------------------------------------------

    def _spawn(self, machine: _Machine, what: str, target: Callable[..., None],
               *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True,
                                  name=f"sandbox-{what}-{machine.instance_id}")
        machine.threads.append(thread)
        thread.start()

    def _fail(self, machine: _Machine, reason: str) -> None:
        """Record why (``refused.txt``, the log, then the state: whoever sees ``failed``
        finds the reason)."""
        with contextlib.suppress(OSError):
            make_dirs(machine.dir)
            (machine.dir / "refused.txt").write_text(reason + "\n", encoding="utf-8")
        self._log(f"sandbox {machine.instance_id}: REFUSED, not booted: {reason}")
        with self._lock:
            machine.state, machine.reason = "failed", reason

    def _boot(self, machine: _Machine, instance: Instance) -> None:
        try:
            make_dirs(machine.dir)
            self._check_trainer_idle()
            url = self._metadata.url_for(instance.id, instance.region, instance.hostname)
            launch = prepare(instance, machine.host, self._settings(), url, machine.console)
        except BootRefused as exc:
            self._fail(machine, str(exc))
            return
        except Exception as exc:  # a backend bug must fail this machine, not the emulator
            self._fail(machine, f"boot failed: {type(exc).__name__}: {exc}")
            return
        self._start(machine, launch)

    def _settings(self) -> Settings:
        with self._lock:
            if self._bin is None:
                self._bin = install_tools(self.root / "bin", self.python)
        if not self.s5cmd:
            raise BootRefused("no s5cmd found (beside this python or on PATH): the runner "
                              "needs it for the bucket; pass s5cmd=")
        return Settings(self.root, self._bin, self.python, self.s5cmd, self.trainer_user)

    def _check_trainer_idle(self) -> None:
        if self._trainer_uid in (os.getuid(), os.geteuid()):
            return  # the runner never stops its own uid's processes
        busy = statefiles.pids_of_user(self._trainer_uid)
        if busy:
            raise BootRefused(f"trainer_user {self.trainer_user} has processes running "
                              f"({', '.join(map(str, busy[:5]))}); the runner stops every "
                              "process of its trainer after training, so it may not share one")

    def _start(self, machine: _Machine, launch: Launch) -> None:
        problem = ""
        with self._lock:
            if machine.deleted or self._closed:
                problem = "deleted or closed before its runner started"
            else:
                try:
                    machine.proc = popen(launch, machine.console)
                    machine.state, machine.state_dir = "running", launch.state_dir
                except OSError as exc:
                    problem = f"cannot start {launch.argv[0]}: {exc}"
        if problem:
            self._fail(machine, problem)
            return
        self._log(f"sandbox {machine.instance_id}: runner started, pid {machine.proc.pid}; "
                  f"console {machine.console}")
        self._spawn(machine, "reap", self._reap, machine, launch.secret_files)

    def _reap(self, machine: _Machine, secret_files: tuple[Path, ...]) -> None:
        """Wait for the runner, delete the machine's secrets, then record how it ended."""
        code = machine.proc.wait()
        for path in secret_files:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        how = "stopped by the sandbox" if machine.signalled else "exited"
        self._log(f"sandbox {machine.instance_id}: runner {how} with status {code}; "
                  "its secrets file is deleted")
        with self._lock:
            machine.exit_code = code
            machine.state = "killed" if machine.signalled else "exited"

    def _after_delete(self, machine: _Machine) -> None:
        proc = machine.proc
        if proc is None:
            return  # still booting: _start sees ``deleted``; or it never ran
        try:
            proc.wait(self.delete_grace_s)
        except subprocess.TimeoutExpired:
            self._log(f"sandbox {machine.instance_id}: runner still running "
                      f"{self.delete_grace_s:g}s after its instance was deleted: stopping it")
            self._stop(machine)
            return
        self._stop_training(machine)

    def _stop(self, machine: _Machine) -> None:
        """Stop the runner's process group, then the training group; bounded."""
        proc = machine.proc
        if proc is not None and proc.poll() is None:
            machine.signalled = True
            statefiles.stop(proc.pid, group=True, grace_s=self.stop_grace_s)
        self._stop_training(machine)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(JOIN_S)

    def _stop_training(self, machine: _Machine) -> None:
        """The training command leads its own session, outside the runner's group."""
        if machine.state_dir is None:
            return
        pid = statefiles.StateDir(machine.state_dir).live_pid(statefiles.TRAIN_PID)
        if pid is None or not works_in(pid, machine.host):
            return
        self._log(f"sandbox {machine.instance_id}: stopping training group {pid}")
        statefiles.stop(pid, group=True, grace_s=min(self.stop_grace_s, 5.0))
