"""Typed records for the emulator's mutable resources and their Vultr-shaped JSON views.

Records are frozen: the store replaces a record to change it, so keeping a shallow copy of the
store's tables is enough to roll a change back. Statuses are not stored; the ``*_view``
functions derive them from the record's creation time, the clock's ``now`` and the ``Timing``.
"""

from __future__ import annotations

from dataclasses import dataclass

from launcher.emulator.catalogue import BLOCK_TYPES
from launcher.emulator.timing import Timing

# Vultr shows the root password for ten minutes after deployment.
PASSWORD_VISIBLE_S = 600.0
NEVER = float("-inf")


@dataclass(frozen=True)
class PrivateInterface:
    """An instance's interface on one VPC, as hypervisor hooks see it: ``mac`` (lower case),
    ``address`` on the VPC's subnet and ``netmask`` dotted (``255.255.240.0``), the fields of a
    private entry in ``/v1.json`` ``interfaces`` (see ``launcher.sandbox.metadata``)."""

    vpc_id: str
    mac: str
    address: str
    netmask: str


@dataclass(frozen=True)
class Vpc:
    """One VPC: a private IPv4 network (``v4_subnet``/``v4_subnet_mask``) in one region."""

    id: str
    region: str
    description: str
    v4_subnet: str
    v4_subnet_mask: int
    date_created: str


@dataclass(frozen=True)
class Instance:
    """One virtual machine. ``user_data`` is the base64 text exactly as the client sent it;
    ``private`` its interfaces on the VPCs attached at create, in ``attach_vpc`` order."""

    id: str
    region: str
    plan: str
    label: str
    hostname: str
    tags: tuple[str, ...]
    os_id: int
    os: str
    snapshot_id: str
    app_id: int
    image_id: str
    user_data: str
    vcpu_count: int
    ram: int
    disk: int
    allowed_bandwidth: int
    main_ip: str
    password: str
    features: tuple[str, ...]
    date_created: str
    created_t: float
    locked_until: float = NEVER
    reboots: int = 0
    private: tuple[PrivateInterface, ...] = ()

    @property
    def internal_ip(self) -> str:
        """Its address on its first VPC, "" without one (what ``internal_ip`` shows)."""
        return self.private[0].address if self.private else ""


@dataclass(frozen=True)
class Block:
    """One block-storage volume; ``attached_to`` is an instance id or ``""``."""

    id: str
    region: str
    size_gb: int
    label: str
    block_type: str
    mount_id: str
    date_created: str
    created_t: float
    attached_to: str = ""
    attached_t: float = NEVER  # when the attach was accepted (it shows a little later)


@dataclass(frozen=True)
class Snapshot:
    """One snapshot; seeded snapshots have ``created_t == NEVER`` and are always complete."""

    id: str
    description: str
    size: int
    os_id: int
    app_id: int
    date_created: str
    created_t: float = NEVER


@dataclass(frozen=True)
class SshKey:
    """One SSH public key."""

    id: str
    name: str
    ssh_key: str
    date_created: str


@dataclass(frozen=True)
class Phase:
    """An instance's three status fields at one moment."""

    status: str
    power_status: str
    server_status: str

    @property
    def locked(self) -> bool:
        """True when Vultr would refuse an attach with "Server is currently locked"."""
        return self.server_status != "ok"


def instance_phase(inst: Instance, now: float, timing: Timing) -> Phase:
    """status pending→active, power stopped→running, server none→installingbooting→ok."""
    age = now - inst.created_t
    if age < timing.instance_active_s:
        return Phase("pending", "stopped", "none")
    if age < timing.server_booting_s:
        server = "none"
    elif age < timing.server_ok_s:
        server = "installingbooting"
    elif now < inst.locked_until:
        server = "locked"
    else:
        server = "ok"
    return Phase("active", "running", server)


def instance_view(inst: Instance, now: float, timing: Timing) -> dict:
    """The ``instance`` object of the API at time ``now``."""
    phase = instance_phase(inst, now, timing)
    active = phase.status == "active"
    visible = now - inst.created_t < PASSWORD_VISIBLE_S
    return {
        "id": inst.id, "os": inst.os, "os_id": inst.os_id, "app_id": inst.app_id,
        "image_id": inst.image_id, "snapshot_id": inst.snapshot_id,
        "ram": inst.ram, "disk": inst.disk, "vcpu_count": inst.vcpu_count,
        "allowed_bandwidth": inst.allowed_bandwidth, "plan": inst.plan, "region": inst.region,
        "main_ip": inst.main_ip if active else "0.0.0.0",
        "netmask_v4": "255.255.255.0" if active else "",
        "gateway_v4": inst.main_ip.rsplit(".", 1)[0] + ".1" if active else "0.0.0.0",
        "v6_networks": [], "internal_ip": inst.internal_ip if active else "", "kvm": "",
        "default_password": inst.password if visible else "",
        "date_created": inst.date_created, "status": phase.status,
        "power_status": phase.power_status, "server_status": phase.server_status,
        "label": inst.label, "hostname": inst.hostname,
        "tag": inst.tags[0] if inst.tags else "", "tags": list(inst.tags),
        "features": list(inst.features), "firewall_group_id": "", "user_scheme": "root",
    }


def vpc_view(vpc: Vpc) -> dict:
    """The ``vpc`` object of the API."""
    return {"id": vpc.id, "region": vpc.region, "date_created": vpc.date_created,
            "description": vpc.description, "v4_subnet": vpc.v4_subnet,
            "v4_subnet_mask": vpc.v4_subnet_mask}


def instance_vpc_view(nic: PrivateInterface) -> dict:
    """One item of ``GET /instances/{id}/vpcs``."""
    return {"id": nic.vpc_id, "mac_address": nic.mac, "ip_address": nic.address}


def block_cost(block_type: str, size_gb: int) -> int:
    """Monthly cost in whole dollars (the spec types ``cost`` as an integer), at least 1."""
    return max(1, round(size_gb * BLOCK_TYPES[block_type][2]))


def block_view(block: Block, now: float, timing: Timing) -> dict:
    """The ``block`` object of the API at time ``now``."""
    active = now - block.created_t >= timing.block_active_s
    shown = now - block.attached_t >= timing.attach_visible_s
    named = now - block.created_t >= timing.block_mount_id_s
    return {
        "id": block.id, "cost": block_cost(block.block_type, block.size_gb),
        "status": "active" if active else "pending", "size_gb": block.size_gb,
        "region": block.region, "attached_to_instance": block.attached_to if shown else "",
        "date_created": block.date_created, "label": block.label,
        "mount_id": block.mount_id if named else "", "block_type": block.block_type,
    }


def snapshot_view(snap: Snapshot, now: float, timing: Timing) -> dict:
    """The ``snapshot`` object of the API at time ``now``."""
    complete = now - snap.created_t >= timing.snapshot_complete_s
    return {
        "id": snap.id, "date_created": snap.date_created, "description": snap.description,
        "size": snap.size, "status": "complete" if complete else "pending",
        "os_id": snap.os_id, "app_id": snap.app_id,
    }


def ssh_key_view(key: SshKey) -> dict:
    """The ``ssh_key`` object of the API."""
    return {"id": key.id, "date_created": key.date_created, "name": key.name,
            "ssh_key": key.ssh_key}


def test_net_ip(index: int) -> str:
    """The ``index``-th address handed out, from the RFC 5737 TEST-NET ranges (never routable)."""
    nets = ("192.0.2", "198.51.100", "203.0.113")
    net, host = divmod(index, 244)
    return f"{nets[net % len(nets)]}.{host + 10}"
