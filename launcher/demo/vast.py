"""The demo's Vast.ai: a :class:`~launcher.emulator.vast.VastEmulator` whose instances are
:class:`~launcher.sandbox.container.ContainerSandbox` containers running the rendered onstart
(and through it the real runner, in container mode); what a container prints is its
instance's container log (``launcher logs RUN --machine``).

A Vast instance is a Docker container with an ``onstart`` (no cloud-init, no volume): the
runner in it trains, uploads to the bucket and destroys its own instance with the key Vast
puts in the container (``CONTAINER_API_KEY``, vast-ai/docs api-reference/hello-world.mdx).
What is left is what still bills: every instance the emulator holds (a stopped one keeps
paying for its disk: "Stopped instances continue incurring storage charges", vast-ai/docs
guides/instances/manage-instances.mdx) and every container with a process alive.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from launcher.emulator.events import Event
from launcher.emulator.vast import VastEmulator, VastTiming
from launcher.emulator.vast.routes import V0
from launcher.sandbox.container import ContainerSandbox

TITLE = "Vast.ai"
LIVE_STATES = ("starting", "running")


class ContainerMachines:
    """The emulator's hypervisor: every hook goes to the sandbox; the instance ids are kept
    so :meth:`running` can count the containers still alive.

    A container starts ``boot_delay_s`` after its create (the emulator's ``running_s``): on
    Vast the onstart runs once the image is loaded and the instance reads ``running``, so a
    run never ends before the API has shown it running."""

    def __init__(self, sandbox: ContainerSandbox, boot_delay_s: float = 0.0) -> None:
        self.sandbox, self.boot_delay_s = sandbox, boot_delay_s
        self._ids: list[str] = []
        self._pending: dict[str, threading.Timer] = {}
        self._lock = threading.Lock()

    def instance_created(self, instance: Any) -> None:
        iid = str(instance.id)
        timer = threading.Timer(self.boot_delay_s, self._boot, args=(instance,))
        timer.daemon = True
        with self._lock:
            self._ids.append(iid)
            self._pending[iid] = timer
        timer.start()

    def _boot(self, instance: Any) -> None:
        with self._lock:
            if self._pending.pop(str(instance.id), None) is None:
                return  # destroyed before it ran
            self.sandbox.instance_created(instance)

    def instance_stopped(self, instance: Any) -> None:
        self.sandbox.instance_stopped(instance)

    def instance_started(self, instance: Any) -> None:
        self.sandbox.instance_started(instance)

    def instance_deleted(self, instance: Any) -> None:
        with self._lock:
            timer = self._pending.pop(str(instance.id), None)
        if timer is not None:
            timer.cancel()
            return
        self.sandbox.instance_deleted(instance)

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._ids)

    def running(self) -> list[str]:
        """Containers about to start, not yet destroyed or stopped, or with a process alive."""
        with self._lock:
            pending = set(self._pending)
        return [iid for iid in self.ids()
                if iid in pending or self.sandbox.view(iid).state in LIVE_STATES
                or self.sandbox.processes(iid)]

    def close(self) -> None:
        with self._lock:
            timers, self._pending = list(self._pending.values()), {}
        for timer in timers:
            timer.cancel()
        self.sandbox.close()


class ContainerLog:
    """The sandbox's ``output`` callback, bound to the emulator once it is built (the
    sandbox, its hypervisor, comes first): a container's output is its instance's container
    log, which ``request_logs`` serves. Lines before the binding are dropped."""

    def __init__(self) -> None:
        self.emulator: VastEmulator | None = None

    def __call__(self, instance_id: str, text: str) -> None:
        if self.emulator is not None:
            self.emulator.container_output(instance_id, text)


def start_vast(machines_dir: Path | None, api_key: str, timing: VastTiming,
               latency_s: float, log: Callable[[str], None]
               ) -> tuple[VastEmulator, ContainerMachines | None]:
    """The emulator (started) and, with ``machines_dir``, the containers it drives."""
    machines, output = None, ContainerLog()
    if machines_dir is not None:
        machines = ContainerMachines(ContainerSandbox(machines_dir, log=log, output=output),
                                     boot_delay_s=timing.running_s)
    emulator = VastEmulator(api_key=api_key, timing=timing, hypervisor=machines, seed=None,
                            latency_s=latency_s)
    output.emulator = emulator
    emulator.start()
    return emulator, machines


def vast_left(emulator: VastEmulator | None, machines: ContainerMachines | None
              ) -> dict[str, int]:
    """Instances the emulator holds (running or stopped: both bill), containers alive."""
    return {"instances": len(emulator.state.listed()) if emulator else 0,
            "machines": len(machines.running()) if machines else 0}


def is_vast_launch(event: Event) -> bool:
    """The launch's last mutating call: the create (``PUT /asks/{id}/``)."""
    return event.mutating and event.path.startswith(f"{V0}/asks/")
