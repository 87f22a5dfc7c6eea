"""The hook through which the emulator drives something that plays the machines.

The emulator only keeps API state; a hypervisor makes it physical. Later backends: a local
process backend (an instance is a process running the cloud-init document) and a VM backend
(an instance is a QEMU VM booted from the test image; attaching hot-plugs a virtio disk whose
serial is the block's ``mount_id``, so ``/dev/disk/by-id/virtio-<mount_id>`` appears; deleting
the instance stops the VM).

Contract: hooks are called synchronously while the emulator holds its state lock, after the
change is applied but before it is answered. A hook that raises makes the emulator roll its
own state back to what it was before the request and answer 500 "Internal server error.", so
the API never shows a half-applied change. Hooks that already ran for that request are not
undone (the backend owns its side effects). Deleting an instance calls ``volume_detached`` for
each attached volume first, then ``instance_deleted``.

An instance created with ``attach_vpc`` carries its private interfaces on the record
(``Instance.private``: VPC id, MAC, address, dotted netmask), so a backend can put them in the
machine's metadata (``launcher.sandbox.metadata.private_interfaces``).
"""

from __future__ import annotations

from typing import Protocol

from launcher.emulator.records import Block, Instance


class Hypervisor(Protocol):
    """What the emulator tells a machine backend. Records are immutable snapshots."""

    def instance_created(self, instance: Instance) -> None:
        """A create was accepted: start the machine (return fast; boot in the background)."""

    def volume_attached(self, instance: Instance, block: Block) -> None:
        """``block`` is now attached to ``instance`` (``block.attached_to == instance.id``)."""

    def volume_detached(self, instance: Instance, block: Block) -> None:
        """``block`` was detached from ``instance`` (explicitly, or because it was deleted)."""

    def instance_deleted(self, instance: Instance) -> None:
        """The instance is gone: stop the machine."""


class NoopHypervisor:
    """The default: no machines, the API state is all there is."""

    def instance_created(self, instance: Instance) -> None:
        return None

    def volume_attached(self, instance: Instance, block: Block) -> None:
        return None

    def volume_detached(self, instance: Instance, block: Block) -> None:
        return None

    def instance_deleted(self, instance: Instance) -> None:
        return None
