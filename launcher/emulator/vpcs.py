"""The emulator's VPCs: the table, the subnet chosen when none is given, and each attached
instance's private interface (MAC, address, netmask).

Shares the :class:`~launcher.emulator.state.Store`'s lock. An instance's addresses are not
kept here: they live on the instance record (``Instance.private``), so deleting an instance,
or rolling its create back, frees its address with nothing else to undo. Which rules and
texts come from a source, and which are the emulator's own, is in docs/emulator.md ("VPCs").
"""

from __future__ import annotations

import ipaddress
import random
import threading
from collections.abc import Callable, Iterable

from launcher.emulator.errors import Refusal
from launcher.emulator.records import Instance, PrivateInterface, Vpc

# The subnet chosen when a create gives none: the k-th is 10.k.112.0/20 (the emulator's own
# choice, shaped after the private interface in canonical/cloud-init
# tests/unittests/sources/test_vultr.py: 10.1.112.3, netmask 255.255.240.0).
DEFAULT_MASK = 20
# Hosts are handed out from the subnet's third address (that example's .3) upward.
FIRST_HOST = 3


def default_subnet(index: int) -> str:
    """The ``index``-th (from 0) subnet chosen for a VPC created without one."""
    return f"10.{index % 254 + 1}.112.0"


def _network(subnet: str, mask: int) -> ipaddress.IPv4Network:
    """A VPC's network: RFC 1918 (the Vultr OpenAPI: "VPCs should use RFC1918 private address
    space"), host bits clear, room for at least one host."""
    try:
        net = ipaddress.IPv4Network(f"{subnet}/{mask}", strict=True)
    except ValueError as exc:
        raise Refusal(400, "bad_vpc_subnet") from exc
    private = any(net.subnet_of(ipaddress.IPv4Network(block))
                  for block in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
    if not private or net.num_addresses < FIRST_HOST + 2:
        raise Refusal(400, "bad_vpc_subnet")
    return net


class VpcTable:
    """VPCs by id, in creation order. Methods take the store's lock themselves."""

    def __init__(self, lock: threading.RLock, new_id: Callable[[], str],
                 regions: Iterable[str], rng: random.Random, now: Callable[[], str]) -> None:
        self.lock = lock
        self._new_id = new_id
        self._regions = frozenset(regions)
        self._rng = rng
        self._now = now
        self._chosen = 0  # subnets chosen so far
        self.vpcs: dict[str, Vpc] = {}

    def get(self, vpc_id: str) -> Vpc:
        with self.lock:
            vpc = self.vpcs.get(vpc_id)
        if vpc is None:
            raise Refusal(404, "vpc_not_found")
        return vpc

    def list(self) -> list[Vpc]:
        with self.lock:
            return list(self.vpcs.values())

    def create(self, region: str, description: str, v4_subnet: str, v4_subnet_mask: int) -> Vpc:
        """A new VPC; without a subnet the emulator chooses one (see :func:`default_subnet`)."""
        if region not in self._regions:
            raise Refusal(400, "bad_region")
        if bool(v4_subnet) != bool(v4_subnet_mask):
            raise Refusal(400, "vpc_subnet_pair")
        with self.lock:
            if not v4_subnet:
                v4_subnet, v4_subnet_mask = default_subnet(self._chosen), DEFAULT_MASK
                self._chosen += 1
            _network(v4_subnet, v4_subnet_mask)
            vpc = Vpc(id=self._new_id(), region=region, description=description,
                      v4_subnet=v4_subnet, v4_subnet_mask=v4_subnet_mask,
                      date_created=self._now())
            self.vpcs[vpc.id] = vpc
            return vpc

    def update(self, vpc_id: str, description: str) -> None:
        with self.lock:
            vpc = self.get(vpc_id)
            self.vpcs[vpc_id] = Vpc(vpc.id, vpc.region, description, vpc.v4_subnet,
                                    vpc.v4_subnet_mask, vpc.date_created)

    def delete(self, vpc_id: str, instances: Iterable[Instance]) -> None:
        """Refused while instances are attached, naming their (public) addresses."""
        with self.lock:
            self.get(vpc_id)
            attached = [i.main_ip for i in instances
                        if any(nic.vpc_id == vpc_id for nic in i.private)]
            if attached:
                raise Refusal(400, "vpc_attached", addresses=", ".join(attached))
            del self.vpcs[vpc_id]

    def interfaces(self, region: str, vpc_ids: Iterable[str],
                   instances: Iterable[Instance]) -> tuple[PrivateInterface, ...]:
        """The new instance's interface on each VPC of ``attach_vpc`` (each once): the VPC
        must exist and be in the instance's region; the address is the lowest free host."""
        with self.lock:
            taken = [nic for i in instances for nic in i.private]
            nics: list[PrivateInterface] = []
            for vpc_id in dict.fromkeys(vpc_ids):
                vpc = self.vpcs.get(vpc_id)
                if vpc is None:
                    raise Refusal(400, "bad_vpc")
                if vpc.region != region:
                    raise Refusal(400, "vpc_region_mismatch", vpc=vpc_id, region=region)
                used = {n.address for n in taken if n.vpc_id == vpc_id}
                nics.append(PrivateInterface(vpc_id, self._mac(taken + nics),
                                             _free_host(vpc, used), _netmask(vpc)))
            return tuple(nics)

    def _mac(self, taken: list[PrivateInterface]) -> str:
        """A MAC unused by any private interface: ``5a:00:`` and four random bytes, shaped
        after the private interface's ``5a:00:03:1b:4e:ca`` in cloud-init's Vultr test data."""
        used = {n.mac for n in taken}
        for _ in range(64):
            tail = self._rng.getrandbits(32).to_bytes(4, "big")
            mac = "5a:00:" + ":".join(f"{b:02x}" for b in tail)
            if mac not in used:
                return mac
        raise RuntimeError("no free MAC address after 64 draws")


def _netmask(vpc: Vpc) -> str:
    return str(_network(vpc.v4_subnet, vpc.v4_subnet_mask).netmask)


def _free_host(vpc: Vpc, used: set[str]) -> str:
    net = _network(vpc.v4_subnet, vpc.v4_subnet_mask)
    last = net.num_addresses - 2  # the broadcast address is never handed out
    for offset in range(FIRST_HOST, last + 1):
        address = str(net.network_address + offset)
        if address not in used:
            return address
    raise Refusal(400, "vpc_full")
