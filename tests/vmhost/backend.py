""":class:`VmHypervisor`: the emulator's machines, played by QEMU virtual machines.

Each instance the emulator creates boots the cached guest image (:mod:`.image`) from a qcow2
overlay of its own, under TCG. cloud-init's real Vultr datasource finds a Vultr machine
(SMBIOS), fetches ``http://169.254.169.254/v1.json`` — answered by a metadata server pinned
to this instance, with its id, MAC, hostname, region and user data — and runs the document
exactly as Vultr delivers it. Attaching a volume hot-plugs a sparse disk file as a
virtio-blk device whose serial is the block's ``mount_id`` (``/dev/disk/by-id/virtio-<id>``);
detaching unplugs it; deleting the instance stops the VM (after ``delete_grace_s``, so the
guest's own DELETE is answered). The guest reaches only 169.254.169.254 and the
:class:`~vmhost.qemu.Forward` s given here; render the run document with
:meth:`VmHypervisor.guest_url` of the emulator's and the bucket's loopback URLs.

Hook contract (the emulator's): hooks run under the emulator's state lock, so each one only
queues work for the machine's own worker thread and returns at once; none raises for a
machine problem — a machine that cannot boot is marked ``failed`` with its reason.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from launcher.emulator.records import Block, Instance
from launcher.sandbox.metadata import MetadataServer, vultr_v1
from launcher.sandbox.status import MachineViews
from vmhost.agent import AgentError, ExecResult, guest_exec
from vmhost.image import GuestImage
from vmhost.qemu import (
    METADATA_ADDR,
    NET,
    Forward,
    Qmp,
    QmpError,
    VmConfig,
    connect_qmp,
    make_overlay,
    qemu_argv,
    stop_process,
)

LOGGER = logging.getLogger("vmhost")
FINAL = ("exited", "stopped", "failed")
SERIAL_MAX = 20  # virtio-blk keeps 20 bytes of a serial
GIB = 1 << 30


@dataclass(frozen=True)
class VmState:
    """One machine: ``state`` booting, running, exited (on its own), stopped (by the
    backend after its instance was deleted, ``stopped_how``), failed (``reason``);
    ``timeline`` is (seconds since QEMU started, what) for each event seen from outside;
    ``metadata_served`` when ``/v1.json`` was answered (seconds since QEMU started)."""

    instance_id: str
    state: str
    pid: int | None
    exit_code: int | None
    reason: str
    console: Path
    directory: Path
    timeline: tuple[tuple[float, str], ...]
    metadata_served: tuple[float, ...]
    started_at: float = 0.0  # epoch seconds when QEMU started (0: not yet)


@dataclass
class _Vm:
    instance_id: str
    dir: Path
    mac: str
    ops: queue.Queue = field(default_factory=queue.Queue)
    state: str = "booting"
    reason: str = ""
    proc: subprocess.Popen | None = None
    qmp: Qmp | None = None
    started: float = 0.0
    exit_code: int | None = None
    devices: dict[str, tuple[str, str]] = field(default_factory=dict)
    plugged: int = 0
    timeline: list[tuple[float, str]] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def console(self) -> Path:
        return self.dir / "console.log"


def mac_for(instance_id: str) -> str:
    """A stable, locally administered MAC for an instance (lower case)."""
    digest = hashlib.sha256(instance_id.encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


class VmHypervisor(MachineViews[VmState]):
    """The emulator's :class:`~launcher.emulator.Hypervisor`, backed by QEMU VMs under
    ``work_dir`` booted from ``image``. ``forwards`` are the loopback services the guest may
    reach. ``disk_cap_gb`` caps a hot-plugged disk's size (the API keeps the real size).
    Use as a context manager; :meth:`close` stops every VM, bounded."""

    final_states = FINAL

    def __init__(self, image: GuestImage, work_dir: str | Path,
                 forwards: Sequence[Forward] = (), *, log: Callable[[str], None] | None = None,
                 memory_mb: int = 1536, cpus: int = 2, disk_cap_gb: int = 8,
                 delete_grace_s: float = 3.0, stop_grace_s: float = 5.0,
                 python: str = sys.executable) -> None:
        self.image, self.forwards = image, tuple(forwards)
        self.work_dir = Path(work_dir).resolve()
        (self.work_dir / "blocks").mkdir(parents=True, exist_ok=True)
        self.memory_mb, self.cpus, self.disk_cap_gb = memory_mb, cpus, disk_cap_gb
        self.delete_grace_s, self.stop_grace_s, self.python = delete_grace_s, stop_grace_s, python
        self._log = log or LOGGER.info
        self._lock = threading.Lock()
        self._vms: dict[str, _Vm] = {}
        self._blocks_seen: set[str] = set()
        self._metadata = MetadataServer()
        self._sockets = Path(tempfile.mkdtemp(prefix="launcher-vm-"))
        self._closed = False

    def __enter__(self) -> VmHypervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def forward(self, host_url: str, guest_addr: str, guest_port: int = 80) -> str:
        """Let the guest reach the loopback service at ``host_url`` as
        ``guest_addr:guest_port`` (inside 169.254.0.0/16); the URL the guest uses. Machines
        booted from now on get the forward."""
        parts = urlsplit(host_url)
        if parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
            raise ValueError(f"only 127.0.0.1:<port> services are forwarded, not {host_url}")
        if ipaddress.ip_address(guest_addr) not in ipaddress.ip_network(NET) or \
                guest_addr == METADATA_ADDR:
            raise ValueError(f"{guest_addr} is not a free address inside {NET}")
        with self._lock:
            self.forwards = (*self.forwards, Forward(guest_addr, guest_port, parts.port))
        return self.guest_url(host_url)

    def guest_url(self, host_url: str) -> str:
        """``host_url`` (on 127.0.0.1) as the guest reaches it through its forward."""
        parts = urlsplit(host_url)
        for fwd in self.forwards:
            if parts.hostname in ("127.0.0.1", "localhost") and parts.port == fwd.host_port:
                netloc = fwd.guest_addr + ("" if fwd.guest_port == 80 else f":{fwd.guest_port}")
                return urlunsplit(parts._replace(netloc=netloc))
        raise ValueError(f"{host_url} is not forwarded to the guest")

    # -- the emulator's hooks (under its lock: queue work, never raise) ----------------------

    def instance_created(self, instance: Instance) -> None:
        """Register the machine and its metadata; its worker boots it."""
        vm = _Vm(instance.id, self.work_dir / instance.id, mac_for(instance.id))
        with self._lock:
            self._vms[instance.id] = vm
            closed = self._closed
        if closed:
            self._fail(vm, "the VM backend is closed")
            return
        try:
            user_data = base64.b64decode(instance.user_data).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            user_data = ""  # Vultr passes it on as it is; cloud-init then finds nothing
        self._metadata.register(instance.id, vultr_v1(
            instance.id, region=instance.region, hostname=instance.hostname or instance.label,
            mac=vm.mac, user_data=user_data))
        vm.ops.put(("boot", None))
        self._spawn(vm, "worker", self._work, vm)

    def volume_attached(self, instance: Instance, block: Block) -> None:
        """Queue the hot-plug of ``block`` as a virtio disk with serial ``mount_id``."""
        self._queue(instance.id, ("attach", block))

    def volume_detached(self, instance: Instance, block: Block) -> None:
        """Queue the unplug of ``block`` (its disk file, the volume's data, stays)."""
        self._queue(instance.id, ("detach", block))

    def instance_deleted(self, instance: Instance) -> None:
        """Stop answering its metadata, then stop the VM after ``delete_grace_s``."""
        self._metadata.forget(instance.id)
        self._queue(instance.id, ("delete", None))

    def _queue(self, instance_id: str, op: tuple[str, object]) -> None:
        with self._lock:
            vm = self._vms.get(instance_id)
        if vm is not None:
            vm.ops.put(op)

    def guest_exec(self, instance_id: str, argv: list[str], timeout: float) -> ExecResult:
        """Run ``argv`` as root inside the running machine through its guest agent (what an
        operator with a root shell could do); :class:`AgentError` if it cannot."""
        with self._lock:
            vm = self._vms[instance_id]
        if vm.state != "running":
            raise AgentError(f"machine {instance_id} is {vm.state}, not running")
        return guest_exec(self._agent_socket(vm), argv, timeout)

    def _agent_socket(self, vm: _Vm) -> Path:
        return self._sockets / f"{vm.instance_id[:12]}.qga"

    # -- status -----------------------------------------------------------------------------

    @property
    def _entries(self) -> dict[str, _Vm]:
        return self._vms

    def _view(self, vm: _Vm) -> VmState:
        served = tuple(t - vm.started for t in self._metadata.served(vm.instance_id))
        with self._lock:
            return VmState(vm.instance_id, vm.state, vm.proc.pid if vm.proc else None,
                           vm.exit_code, vm.reason, vm.console, vm.dir, tuple(vm.timeline),
                           served, vm.started)

    # -- closing ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every VM (monitor quit, SIGTERM, SIGKILL), then the metadata servers.
        Bounded; idempotent."""
        with self._lock:
            self._closed = True
            vms = list(self._vms.values())
        for vm in vms:
            vm.ops.put(("close", None))
        bound = 4 * self.stop_grace_s + 30
        for vm in vms:
            for thread in list(vm.threads):
                thread.join(bound)
        for vm in vms:  # a worker stuck past its bound: stop the VM from here
            if vm.proc is not None and vm.proc.poll() is None:
                self._stop(vm, "close")
        self._metadata.stop()
        shutil.rmtree(self._sockets, ignore_errors=True)

    # -- the machine's worker ---------------------------------------------------------------

    def _spawn(self, vm: _Vm, what: str, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True,
                                  name=f"vm-{what}-{vm.instance_id}")
        vm.threads.append(thread)
        thread.start()

    def _note(self, vm: _Vm, what: str) -> None:
        offset = round(time.time() - vm.started, 1) if vm.started else 0.0
        with self._lock:
            vm.timeline.append((offset, what))
        self._log(f"vm {vm.instance_id}: {what} (+{offset}s)")

    def _fail(self, vm: _Vm, reason: str) -> None:
        self._log(f"vm {vm.instance_id}: FAILED: {reason}")
        with self._lock:
            vm.state, vm.reason = "failed", reason

    def _work(self, vm: _Vm) -> None:
        """Run the machine's operations in order until it is stopped."""
        while True:
            op, arg = vm.ops.get()
            try:
                if op == "boot":
                    self._boot(vm)
                elif op == "attach" and vm.state == "running":
                    self._attach(vm, arg)
                elif op == "detach" and vm.state == "running":
                    self._detach(vm, arg)
                elif op in ("delete", "close"):
                    if op == "delete" and vm.proc is not None and vm.proc.poll() is None:
                        time.sleep(self.delete_grace_s)
                    self._stop(vm, op)
                    return
            except Exception as exc:  # a backend bug must fail this machine only
                self._log(f"vm {vm.instance_id}: ERROR in {op}: {type(exc).__name__}: {exc}")

    def _boot(self, vm: _Vm) -> None:
        try:
            vm.dir.mkdir(parents=True, exist_ok=True)
            overlay = vm.dir / "root.qcow2"
            overlay.unlink(missing_ok=True)
            make_overlay(self.image.root, overlay)
            port = self._metadata.serve_instance(vm.instance_id)
            cfg = VmConfig(vm.instance_id, self.image.kernel, self.image.initrd,
                           self.image.cmdline, overlay, vm.mac,
                           self._sockets / f"{len(self._vms)}-{vm.instance_id[:8]}.qmp",
                           vm.console, (Forward(METADATA_ADDR, 80, port), *self.forwards),
                           self.memory_mb, self.cpus, self._agent_socket(vm))
            vm.console.unlink(missing_ok=True)
            with open(vm.dir / "qemu.log", "wb") as out:
                vm.started = time.time()
                vm.proc = subprocess.Popen(qemu_argv(cfg, self.python), stdout=out,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                           start_new_session=True)
            vm.qmp = connect_qmp(cfg.qmp_socket, 30.0, lambda: vm.proc.poll() is None)
        except (OSError, QmpError, subprocess.SubprocessError) as exc:
            self._fail(vm, f"boot failed: {exc}")
            if vm.proc is not None:
                self._stop(vm, "boot failure")
            return
        with self._lock:
            vm.state = "running"
        self._note(vm, f"qemu started, pid {vm.proc.pid}, mac {vm.mac}")
        self._spawn(vm, "reap", self._reap, vm)

    def _reap(self, vm: _Vm) -> None:
        code = vm.proc.wait()
        with self._lock:
            vm.exit_code = code
            if vm.state == "running":
                vm.state = "exited"
        self._note(vm, f"qemu exited with status {code}")

    def _attach(self, vm: _Vm, block: Block) -> None:
        disk = self.work_dir / "blocks" / f"{block.id}.img"
        with self._lock:
            fresh = block.id not in self._blocks_seen
            self._blocks_seen.add(block.id)
            vm.plugged += 1
            node, dev = f"blk{vm.plugged}", f"vol{vm.plugged}"
        if fresh or not disk.exists():
            disk.unlink(missing_ok=True)
            with open(disk, "wb") as out:
                out.truncate(min(block.size_gb, self.disk_cap_gb) * GIB)
        if len(block.mount_id) > SERIAL_MAX:
            self._log(f"vm {vm.instance_id}: mount_id {block.mount_id!r} is longer than "
                      f"{SERIAL_MAX}: the guest sees it cut to {block.mount_id[:SERIAL_MAX]!r}")
        try:
            vm.qmp.command("blockdev-add", driver="raw", **{
                "node-name": node, "discard": "unmap",
                "file": {"driver": "file", "filename": str(disk)}})
            vm.qmp.command("device_add", driver="virtio-blk-pci", id=dev, drive=node,
                           serial=block.mount_id[:SERIAL_MAX])
        except QmpError as exc:
            self._log(f"vm {vm.instance_id}: ERROR: cannot hot-plug {block.id}: {exc}")
            return
        vm.devices[block.id] = (node, dev)
        self._note(vm, f"hot-plugged {block.id} as {dev} (serial {block.mount_id[:SERIAL_MAX]})")

    def _detach(self, vm: _Vm, block: Block) -> None:
        device = vm.devices.pop(block.id, None)
        if device is None:
            return
        node, dev = device
        try:
            vm.qmp.command("device_del", id=dev)
            if not vm.qmp.wait_event("DEVICE_DELETED", dev, 30.0):
                self._log(f"vm {vm.instance_id}: {dev} not released by the guest in 30s")
                return
            vm.qmp.command("blockdev-del", **{"node-name": node})
        except QmpError as exc:
            self._log(f"vm {vm.instance_id}: ERROR: cannot unplug {block.id}: {exc}")
            return
        self._note(vm, f"unplugged {block.id} ({dev})")

    def _stop(self, vm: _Vm, why: str) -> None:
        if vm.proc is not None:
            was_running = vm.proc.poll() is None
            how = stop_process(vm.proc, vm.qmp, self.stop_grace_s)
            with self._lock:
                vm.exit_code = vm.proc.returncode
                if was_running and vm.state != "failed":
                    vm.state = "stopped"
            self._note(vm, f"qemu stopped ({why}): {how}")
        if vm.qmp is not None:
            vm.qmp.close()
        self._metadata.stop_instance(vm.instance_id)
