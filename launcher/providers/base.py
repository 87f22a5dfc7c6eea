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
7. **What a cloud cannot do is said, not assumed.** :class:`Capabilities` tells callers
   whether there are block volumes, tags, snapshots; a method for something the cloud does
   not have answers "none" for reads (``find_volumes`` gives ``()``) and raises
   ``ConfigError`` for a create, never a half-done imitation.
8. **Catalogue reads are the provider's.** Offers (:meth:`Provider.rank_offers`, with
   stock), images and SSH keys are read through the provider; nothing above this room
   talks to a cloud's client directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    from launcher.providers.offers import OfferTable, Requirement

PROVIDER_NAMES = ("vultr", "vast")


@dataclass(frozen=True)
class Capabilities:
    """What a cloud can do. Callers branch on these, never on a provider's name.

    ``volumes``: block volumes that outlive an instance and attach live (else the machine's
    own disk is the cache); ``tags``: instances carry tags (else their label is the only
    marker); ``images``: what an instance boots from (a ``snapshot`` of the account, or a
    ``docker`` image reference); ``boot``: how the run's bootstrap reaches the machine
    (``cloud-init`` user data, or an ``onstart`` script); ``ssh_host_keys``: the runner
    publishes the machine's SSH host keys to the bucket, so ``launcher ssh`` can pin them;
    ``private_network``: instances of one region can share a private network (an N-node run
    needs one); ``machine_logs``: the cloud keeps the machine's own output (a container's
    log) and hands it over through its API (:meth:`Provider.machine_log`)."""

    volumes: bool
    tags: bool
    images: Literal["snapshot", "docker"]
    boot: Literal["cloud-init", "onstart"]
    ssh_host_keys: bool
    private_network: bool = False
    machine_logs: bool = False


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
    kind: str = ""  # the cloud's storage class ("high_perf")
    created_epoch: float | None = None
    usd_per_hour: float | None = None


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
    # A cloud booting an ``onstart`` script instead: the script, the machine's environment
    # (it holds the run's secrets) and its disk.
    onstart: str = field(repr=False, default="")
    env: tuple[tuple[str, str], ...] = field(repr=False, default=())
    disk_gb: float = 0
    network_ids: tuple[str, ...] = ()  # private networks to attach at create (Vultr VPCs)


@dataclass(frozen=True)
class InstanceRef:
    id: str
    label: str
    region: str
    plan: str
    tags: tuple[str, ...]
    state: str
    ready: bool
    running: bool = False  # powered on (``ready`` also means booted)
    address: str = ""  # its public address, "" while it has none
    created_epoch: float | None = None
    usd_per_hour: float | None = None  # list price of what it runs on, None when unknown
    internal_ip: str = ""  # its address on the private network, "" when it has none
    # Where its SSH server answers when that is not ``address`` port 22 (a Vast container:
    # a mapped port, or Vast's SSH proxy host); "" means ``address``.
    ssh_host: str = ""
    ssh_port: int = 22


@dataclass(frozen=True)
class ImageRef:
    """Something an instance can boot from. ``complete``: ready to boot from."""

    id: str
    description: str
    created: str
    status: str
    size_bytes: int = 0

    @property
    def complete(self) -> bool:
        return self.status == "complete"


@dataclass(frozen=True)
class SshKeyRef:
    """An SSH public key the account holds."""

    id: str
    name: str
    public_key: str


@dataclass(frozen=True)
class RunResources:
    """What exists for one run id, as read from the provider."""

    run_id: str
    instances: tuple[InstanceRef, ...] = ()
    volumes: tuple[VolumeRef, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.instances and not self.volumes


C = TypeVar("C", bound="ClientBacked")


class ClientBacked:
    """What every provider over an API client shares: its client, its repr (the client's,
    which never shows the key), closing, and use as a context manager."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.client!r})"

    def close(self) -> None:
        self.client.close()

    def __enter__(self: C) -> C:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Provider(Protocol):
    """See the module docstring for the promises behind each method."""

    name: str
    title: str  # the cloud's name for people ("Vultr", "Vast.ai")
    capabilities: Capabilities

    def close(self) -> None:
        """Release the connection (idempotent)."""
        ...

    def rank_offers(self, requirement: Requirement, *, list_excluded: bool = True
                    ) -> OfferTable:
        """Every offer of the catalogue judged against ``requirement``, with stock. Without
        ``list_excluded`` a provider may skip reading what could only be excluded."""
        ...

    def plan_prices(self, plan_ids: set[str]) -> dict[str, float | None]:
        """$/h of each plan id (None when unknown), for instances whose ref has no price."""
        ...

    def list_images(self) -> tuple[ImageRef, ...]:
        """The account's own images (snapshots); ``()`` when images are public references."""
        ...

    def get_image(self, image_id: str) -> ImageRef:
        """One image by id; ``NotFoundError`` when the account has none by that id."""
        ...

    def find_volumes(self, label: str | None = None) -> tuple[VolumeRef, ...]:
        """The volumes labelled ``label`` (every volume for None); ``()`` without volumes."""
        ...

    def get_volume(self, volume_id: str) -> VolumeRef:
        """One volume; ``NotFoundError`` when it is gone."""
        ...

    def list_ssh_keys(self) -> tuple[SshKeyRef, ...]: ...

    def delete_commands(self, kind: str, resource_id: str,
                        attached_to: str | None = None) -> tuple[str, ...]:
        """The commands that delete an ``instance`` or ``volume`` by hand, in order (the key
        stays a shell variable): what a person is told when the launcher could not."""
        ...

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

    def private_network(self, region: str) -> str:
        """The id of the launcher's private network in ``region`` (a Vultr VPC), found by
        its description or created on first use. It is long-lived: no run deletes it. Only
        where ``capabilities.private_network``."""
        ...

    def register_ssh_key(self, name: str, public_key: str) -> str:
        """The id of the account's key with this key body, or of a new one named ``name``."""
        ...

    def delete_volume(self, volume_id: str) -> bool:
        """Detach (live) if attached, then delete."""
        ...

    def machine_log(self, instance_id: str, tail: int | None = None) -> str:
        """The machine's own output as the cloud keeps it (the last ``tail`` lines when
        given): what the run printed before its runner could write to the bucket. Only
        where ``capabilities.machine_logs``; ``NotFoundError`` when the instance is gone."""
        ...
