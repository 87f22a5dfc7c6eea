"""The Vast emulator's typed records: instances, ssh keys, bills, and the hook's view.

Records are frozen; the store replaces one to change it. Statuses are not stored: they are
derived from the clock (``instance_status``), as in the Vultr emulator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from launcher.emulator.vast.timing import VastTiming

HOURS_PER_MONTH = 720.0  # storage_cost is $/GB/month (docs/emulator.md, Vast "Billing")
# What a direct runtype provisions on the instance (vast-ai/docs creating-instances-with-api
# .mdx, "Runtype and Connection Options"); proxy runtypes provision none.
DIRECT_PORTS = {"ssh_direct": ("22/tcp",), "jupyter_direct": ("22/tcp", "8080/tcp")}
DIRECT_PORT_START = 20000  # show_instances.yaml: direct_port_start 20000, "22/tcp" -> "20000"


@dataclass(frozen=True)
class Instance:
    """One rented contract. ``api_key`` is its restricted key (kept out of repr);
    ``started_t`` is when it was last asked to run; ``stopped`` whether it is stopped."""

    id: int
    offer_id: int
    machine_id: int
    label: str
    image: str
    env: tuple[tuple[str, str], ...]
    ports: tuple[str, ...]
    onstart: str
    args: tuple[str, ...]
    runtype: str
    disk_gb: float
    dph_base: float
    storage_cost: float
    created_t: float
    start_date: float
    api_key: str = field(repr=False)
    started_t: float = 0.0
    stopped: bool = False
    gpu_s: float = 0.0  # billable running seconds of runs that ended (by a stop)


@dataclass(frozen=True)
class Status:
    """``actual_status`` / ``intended_status`` / ``cur_state`` / ``next_state`` now."""

    actual_status: str | None
    intended_status: str
    cur_state: str
    next_state: str


def instance_status(inst: Instance, now: float, timing: VastTiming) -> Status:
    """A stopped instance reads stopped at once; a running one is ``null`` (provisioning),
    then ``loading`` (image pull), then ``running``, counted from its last start."""
    if inst.stopped:
        return Status("stopped", "stopped", "stopped", "stopped")
    elapsed = now - inst.started_t
    if elapsed < timing.provisioning_s:
        actual = None
    elif elapsed < timing.running_s:
        actual = "loading"
    else:
        actual = "running"
    return Status(actual, "running", "running", "running")


def published_ports(inst: Instance) -> dict[str, list[dict[str, str]]]:
    """An instance's ``ports`` as show_instances.yaml shows them: container port -> its
    bindings on the machine (``HostIp``, ``HostPort`` as a string), from the machine's
    first direct port on."""
    return {name: [{"HostIp": "0.0.0.0", "HostPort": str(DIRECT_PORT_START + index)}]
            for index, name in enumerate(DIRECT_PORTS.get(inst.runtype, ()))}


@dataclass(frozen=True)
class Bill:
    """What an instance has cost so far, in dollars, split as Vast splits its price: the
    GPU part (``dph_base``, only while running) and storage (always, until destroyed)."""

    instance_id: int
    gpu_usd: float
    storage_usd: float
    running_s: float
    billed_s: float
    destroyed: bool

    @property
    def total_usd(self) -> float:
        return self.gpu_usd + self.storage_usd


@dataclass(frozen=True)
class SshKey:
    """One account ssh key."""

    id: int
    key: str
    created_at: str


@dataclass(frozen=True)
class HookInstance:
    """What a hypervisor hook receives: everything a container backend needs to start the
    instance. ``api_key`` is the instance's restricted key (the container's
    ``CONTAINER_API_KEY``), kept out of repr; ``api_url`` the API base the container uses."""

    id: int
    label: str
    image: str
    env: dict[str, str]
    onstart: str
    args: tuple[str, ...]
    disk_gb: float
    api_url: str
    api_key: str = field(repr=False)
