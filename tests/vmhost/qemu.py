"""One QEMU virtual machine: its command line, its monitor (QMP), and stopping it.

:func:`qemu_argv` builds the command line of a TCG guest booted with ``-kernel``/``-initrd``
from a per-instance qcow2 overlay, presenting itself to cloud-init as a Vultr instance
(``-smbios type=1,manufacturer=Vultr,serial=<id>``), on QEMU user networking with
``restrict=on`` in 169.254.0.0/16 and one ``guestfwd`` per :class:`Forward` (each connection
runs :mod:`.relay` to a port on 127.0.0.1). :class:`Qmp` speaks the QEMU Machine Protocol on
a unix socket with a deadline on every exchange; :func:`stop_process` ends a VM bounded:
``quit`` through the monitor, then SIGTERM, then SIGKILL by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vmhost.agent import agent_devices

QEMU = "qemu-system-x86_64"
QEMU_IMG = "qemu-img"
NET = "169.254.0.0/16"
METADATA_ADDR = "169.254.169.254"
RELAY = Path(__file__).with_name("relay.py")


class QmpError(RuntimeError):
    """The monitor refused a command, closed, or did not answer in time."""


@dataclass(frozen=True)
class Forward:
    """The guest's ``guest_addr:guest_port`` (inside 169.254.0.0/16) reaches
    ``127.0.0.1:host_port``."""

    guest_addr: str
    guest_port: int
    host_port: int

    def netdev_option(self, python: str) -> str:
        cmd = f"{python} {RELAY} {self.host_port}".replace(",", ",,")
        return f"guestfwd=tcp:{self.guest_addr}:{self.guest_port}-cmd:{cmd}"


@dataclass(frozen=True)
class VmConfig:
    """How one VM is started."""

    instance_id: str
    kernel: Path
    initrd: Path
    cmdline: str
    overlay: Path
    mac: str
    qmp_socket: Path
    console: Path
    forwards: tuple[Forward, ...]
    memory_mb: int = 1536
    cpus: int = 2
    agent_socket: Path | None = None  # the guest agent's port (see :mod:`.agent`), if any


def qemu_argv(cfg: VmConfig, python: str = sys.executable) -> list[str]:
    """The command line that boots ``cfg`` (no display, serial console to a file)."""
    net = ",".join(["user", "id=net0", "restrict=on", f"net={NET}",
                    *(f.netdev_option(python) for f in cfg.forwards)])
    return [
        QEMU, "-accel", "tcg", "-machine", "pc", "-nodefaults", "-no-user-config",
        "-m", str(cfg.memory_mb), "-smp", str(cfg.cpus), "-display", "none", "-vga", "none",
        "-no-reboot", "-kernel", str(cfg.kernel), "-initrd", str(cfg.initrd),
        "-append", cfg.cmdline,
        "-drive", f"file={cfg.overlay},if=virtio,format=qcow2,cache=unsafe",
        "-smbios", f"type=1,manufacturer=Vultr,product=VC2,serial={cfg.instance_id}",
        "-netdev", net, "-device", f"virtio-net-pci,netdev=net0,mac={cfg.mac}",
        "-qmp", f"unix:{cfg.qmp_socket},server=on,wait=off",
        "-serial", f"file:{cfg.console}", "-monitor", "none",
        *(agent_devices(cfg.agent_socket) if cfg.agent_socket else []),
    ]


def make_overlay(base: Path, overlay: Path, timeout: float = 60.0) -> None:
    """A qcow2 overlay of the raw ``base`` (which is never written)."""
    done = subprocess.run([QEMU_IMG, "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                           str(base), str(overlay)], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if done.returncode != 0:
        raise OSError(f"qemu-img create failed: {done.stderr.strip()}")


class Qmp:
    """A QMP session on a unix socket. Every call waits at most ``timeout`` seconds;
    events that arrive meanwhile are kept in :attr:`events`."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self.events: list[dict] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(str(path))
            self._file = self._sock.makefile("rwb")
            self._read_message()  # the greeting
            self.command("qmp_capabilities")
        except (OSError, QmpError):
            self._sock.close()
            raise

    def __enter__(self) -> Qmp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
            self._sock.close()

    def _read_message(self) -> dict:
        try:
            line = self._file.readline()
        except (OSError, TimeoutError) as exc:
            raise QmpError(f"no answer from the monitor: {exc}") from None
        if not line:
            raise QmpError("the monitor closed its socket")
        return json.loads(line)

    def command(self, name: str, **arguments: object) -> object:
        """Run ``name``; its ``return`` value, or :class:`QmpError` with QEMU's reason."""
        message = {"execute": name, **({"arguments": arguments} if arguments else {})}
        try:
            self._file.write(json.dumps(message).encode() + b"\n")
            self._file.flush()
        except OSError as exc:
            raise QmpError(f"cannot send {name}: {exc}") from None
        while True:
            reply = self._read_message()
            if "event" in reply:
                self.events.append(reply)
            elif "error" in reply:
                raise QmpError(f"{name}: {reply['error'].get('desc', reply['error'])}")
            elif "return" in reply:
                return reply["return"]

    def wait_event(self, name: str, device: str, timeout: float) -> bool:
        """True once event ``name`` for ``device`` arrived (kept or new) within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            if any(e.get("event") == name and e.get("data", {}).get("device") == device
                   for e in self.events):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._sock.settimeout(min(left, self.timeout))
            try:
                self.events.append(self._read_message())
            except QmpError:
                if time.monotonic() >= deadline:
                    return False
            finally:
                self._sock.settimeout(self.timeout)


def connect_qmp(path: Path, deadline_s: float, alive: Callable[[], bool]) -> Qmp:
    """Connect once the socket is up (QEMU creates it a moment after starting), retrying
    with backoff until ``deadline_s`` or until ``alive()`` is False."""
    deadline = time.monotonic() + deadline_s
    delay = 0.05
    while True:
        try:
            return Qmp(path)
        except (OSError, QmpError) as exc:
            if time.monotonic() > deadline or not alive():
                raise QmpError(f"cannot reach the monitor at {path}: {exc}") from None
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def stop_process(proc: subprocess.Popen, qmp: Qmp | None, grace_s: float = 5.0) -> str:
    """Stop the VM: ``quit`` via its monitor session (if any), then SIGTERM, then SIGKILL
    (each waited for ``grace_s``). Returns how it ended ("exited", "quit", "terminated",
    "killed", or "still running")."""
    if proc.poll() is not None:
        return "exited"
    if qmp is not None:
        with contextlib.suppress(OSError, QmpError, ValueError):
            qmp.command("quit")
    for how, action in (("quit", None), ("terminated", signal.SIGTERM),
                        ("killed", signal.SIGKILL)):
        if action is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, action)
        try:
            proc.wait(grace_s)
            return how
        except subprocess.TimeoutExpired:
            continue
    return "still running"
