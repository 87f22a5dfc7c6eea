"""The hook through which the Vast emulator drives something that plays the containers.

Contract (as the Vultr emulator's ``launcher.emulator.hypervisor``): hooks are called
synchronously under the store's lock, after the change is applied and before it is
answered. A hook that raises rolls the change back and the client gets a 500. Records are
immutable :class:`HookInstance` snapshots; ``api_key`` is the instance's restricted key, to be
set as ``CONTAINER_API_KEY`` (with ``CONTAINER_ID`` = ``id``) in the container.
"""

from __future__ import annotations

from typing import Protocol

from launcher.emulator.vast.records import HookInstance


class VastHypervisor(Protocol):
    """What the Vast emulator tells a container backend."""

    def instance_created(self, instance: HookInstance) -> None:
        """A create was accepted: start the container (return fast)."""

    def instance_stopped(self, instance: HookInstance) -> None:
        """The instance was stopped: stop the container, keep its disk."""

    def instance_started(self, instance: HookInstance) -> None:
        """A stopped instance was started again."""

    def instance_deleted(self, instance: HookInstance) -> None:
        """The instance was destroyed: remove the container and its disk."""


class NoopVastHypervisor:
    """The default: no containers, the API state is all there is."""

    def instance_created(self, instance: HookInstance) -> None:
        return None

    def instance_stopped(self, instance: HookInstance) -> None:
        return None

    def instance_started(self, instance: HookInstance) -> None:
        return None

    def instance_deleted(self, instance: HookInstance) -> None:
        return None
