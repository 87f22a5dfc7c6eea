"""A stateful loopback emulator of the Vast.ai API, for tests and offline demos.

Standard library only, built on the Vultr emulator's shared parts (serving thread, fault
plan, rate limiter, event log, manual clock, control endpoint). ``VastEmulator(...).start()``
returns ``http://127.0.0.1:PORT/api/v0``; ``python -m launcher.emulator.vast`` does the same
from a shell. See docs/emulator.md, "Vast.ai emulator", for every field's source.
"""

from launcher.emulator.timing import ManualClock
from launcher.emulator.vast.errors import VAST_ERRORS
from launcher.emulator.vast.hypervisor import NoopVastHypervisor, VastHypervisor
from launcher.emulator.vast.records import Bill, HookInstance, Instance
from launcher.emulator.vast.server import VastEmulator
from launcher.emulator.vast.timing import VastTiming

__all__ = ["VAST_ERRORS", "Bill", "HookInstance", "Instance", "ManualClock",
           "NoopVastHypervisor", "VastEmulator", "VastHypervisor", "VastTiming"]
