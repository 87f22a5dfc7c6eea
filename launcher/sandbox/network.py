"""A sandbox machine's network: its private interface is the demo machine's loopback, and a
machine can vanish from it.

A Vultr instance attached to a VPC has a second interface whose MAC and address its
``/v1.json`` lists under ``interfaces`` with ``network-type: private``; the runner's cluster
phase finds that NIC by matching the MAC against ``/sys/class/net/*/address``. Every sandbox
machine runs on one demo machine, so every node's private interface is ``lo``: the metadata
gives address 127.0.0.1 and the MAC the emulator gave the instance's VPC interface, and
``<host>/sys/class/net/lo/address`` carries that MAC. Peers reach each other over loopback,
and NCCL/GLOO_SOCKET_IFNAME=lo binds where they listen.

:func:`freeze` is how a machine vanishes: every process of it is stopped (SIGSTOP) where it
stands. Its sockets stay open and say nothing — no FIN, no RST — which is what peers see of a
machine that lost power or its network, and why the process-group timeout alone would hold
them (a killed process's sockets are closed by the kernel at once, which peers notice in
about a second, so SIGKILL would test the easy case only).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterable
from pathlib import Path

from launcher.emulator.records import Instance, PrivateInterface
from launcher.sandbox.machine import make_dirs
from launcher.sandbox.metadata import private_interface

LOOPBACK_NIC = "lo"
LOOPBACK_ADDRESS = "127.0.0.1"
LOOPBACK_NETMASK = "255.0.0.0"


def private_interfaces(nics: Iterable[PrivateInterface]) -> list[dict]:
    """The machine's ``/v1.json`` entries for its VPC interfaces, moved onto the loopback:
    each keeps the emulator's MAC and VPC id, but its address is 127.0.0.1 (not the VPC
    address the API shows as ``internal_ip``: nothing listens there on the demo machine)."""
    return [private_interface(nic.mac, LOOPBACK_ADDRESS, LOOPBACK_NETMASK, nic.vpc_id)
            for nic in nics]


def plug_private(host: Path, instance: Instance, log: Callable[[str], None]) -> list[dict]:
    """An instance on a VPC: its private interface becomes lo (the MAC in ``host``'s
    ``sys/class/net/lo/address``); returns the metadata's ``interfaces`` entries for it
    ([] for an instance on no VPC)."""
    if not instance.private:
        return []
    nic = instance.private[0]
    write_lo_address(host, nic.mac)
    log(f"sandbox {instance.id}: private interface on {nic.vpc_id} ({nic.mac}, "
        f"{nic.address} in the API) is lo at {LOOPBACK_ADDRESS} here")
    return private_interfaces(instance.private[:1])


def write_lo_address(host: Path, mac: str) -> Path:
    """``<host>/sys/class/net/lo/address`` holding ``mac`` (what the runner reads to find
    which interface has that MAC)."""
    path = make_dirs(host / "sys/class/net" / LOOPBACK_NIC) / "address"
    path.write_text(mac.lower() + "\n", encoding="ascii")
    path.chmod(0o644)
    return path


def freeze(groups: Iterable[int], pids: Iterable[int]) -> None:
    """SIGSTOP every process of ``groups`` (process group ids) and each of ``pids``;
    those already gone are skipped."""
    _signal_all(groups, pids, signal.SIGSTOP)


def kill_now(groups: Iterable[int], pids: Iterable[int]) -> None:
    """SIGKILL every process of ``groups`` and each of ``pids`` (a stopped process never
    sees SIGTERM until continued; SIGKILL ends it where it stands)."""
    _signal_all(groups, pids, signal.SIGKILL)


def _signal_all(groups: Iterable[int], pids: Iterable[int], sig: int) -> None:
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
