"""A stateful loopback emulator of the Vultr API v2, for tests and offline demos.

Standard library only. Start one with ``Emulator(...).start()`` (or as a context manager) and
point a Vultr client at the returned URL; ``python -m launcher.emulator`` does the same from a
shell. State changes (pending→active…) are computed lazily from an injectable clock.
"""

from launcher.emulator.errors import ERRORS
from launcher.emulator.events import Event, Exchange
from launcher.emulator.faults import Fault
from launcher.emulator.hypervisor import Hypervisor, NoopHypervisor
from launcher.emulator.ratelimit import RateLimit
from launcher.emulator.records import Block, Instance, Snapshot, SshKey
from launcher.emulator.server import Emulator
from launcher.emulator.timing import ManualClock, Timing

__all__ = [
    "ERRORS",
    "Block",
    "Emulator",
    "Event",
    "Exchange",
    "Fault",
    "Hypervisor",
    "Instance",
    "ManualClock",
    "NoopHypervisor",
    "RateLimit",
    "Snapshot",
    "SshKey",
    "Timing",
]
