"""The provider contract: what the launcher needs from a cloud, and what it may rely on.

Promises every provider keeps (the tests in ``tests/providers`` hold Vultr to them):

1. **Creates return fast.** ``create_volume`` and ``create_instance`` return once the cloud
   accepted the request; waiting is separate (``wait_*``), with a deadline.
2. **No duplicates.** A create whose outcome was ambiguous (timeout, 5xx) is resolved by
   looking the resource up, never by blindly sending it again.
3. **Everything created is findable from the cloud alone.** Instances carry the run's tags,
   volumes the run's label (``launcher.naming``); ``find_run`` and ``list_runs`` read them
   back, so status, teardown and gc need no local state.
4. **Deleting something already gone succeeds** (returns False); deleting a volume detaches it
   first when it is attached.
5. **Reads never mutate**, and a failed read raises: it is never turned into "nothing there"
   (a reconcile would then buy duplicates, or a teardown report success while things bill).
6. **SSH keys are the account's, not a run's.** ``register_ssh_key`` returns the id of the
   account's key with the same key body (whatever its name), else registers one; nothing
   the launcher does deletes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class VolumeRequest:
    region: str
    size_gb: int
    label: str
    kind: str = "high_perf"


@dataclass(frozen=True)
class VolumeRef:
    """A volume as the provider sees it now. ``attached_to`` is an instance id or None."""

    id: str
    label: str
    region: str
    size_gb: int
    mount_id: str
    attached_to: str | None
    ready: bool


@dataclass(frozen=True)
class InstanceRequest:
    """``user_data`` is the rendered document (bytes); it is never logged or shown."""

    region: str
    plan: str
    image_id: str
    label: str
    tags: tuple[str, ...]
    user_data: bytes = field(repr=False, default=b"")
    ssh_key_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class InstanceRef:
    id: str
    label: str
    region: str
    plan: str
    tags: tuple[str, ...]
    state: str
    ready: bool


@dataclass(frozen=True)
class RunResources:
    """What exists for one run id, as read from the provider."""

    run_id: str
    instances: tuple[InstanceRef, ...] = ()
    volumes: tuple[VolumeRef, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.instances and not self.volumes


class Provider(Protocol):
    """See the module docstring for the promises behind each method."""

    name: str

    def find_run(self, run_id: str) -> RunResources:
        """The instances tagged ``run:<run_id>`` and the volumes labelled for it."""
        ...

    def list_runs(self) -> list[RunResources]:
        """Every run with at least one launcher-tagged instance or run-labelled volume."""
        ...

    def create_volume(self, request: VolumeRequest) -> VolumeRef:
        """Returns fast (not waiting for the volume to be ready) but with its ``mount_id``:
        the document names the device by it, so an empty one is read back until it is set."""
        ...

    def wait_volume_ready(self, volume_id: str, deadline_s: float) -> VolumeRef: ...

    def create_instance(self, request: InstanceRequest) -> InstanceRef: ...

    def wait_instance_ready(self, instance_id: str, deadline_s: float) -> InstanceRef: ...

    def attach_volume(self, volume_id: str, instance_id: str, deadline_s: float) -> VolumeRef:
        """Attach live (never rebooting the instance); a busy instance is retried until the
        deadline. Returns once the attach is visible (``attached_to`` is the instance):
        attaching is asynchronous, and the call's success alone does not say it is done. A
        volume gone meanwhile was used and removed by the run's own teardown (a run can end
        within seconds): its last look, attached, is returned."""
        ...

    def delete_instance(self, instance_id: str) -> bool: ...

    def register_ssh_key(self, name: str, public_key: str) -> str:
        """The id of the account's key with this key body, or of a new one named ``name``."""
        ...

    def delete_volume(self, volume_id: str) -> bool:
        """Detach (live) if attached, then delete."""
        ...
