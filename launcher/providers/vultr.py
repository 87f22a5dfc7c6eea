"""Vultr behind the provider contract (``launcher.providers.base``), over ``VultrClient``.

The client already keeps promise 2 (ambiguous creates are resolved by look-up) and promise 4
for plain deletes; this module adds the run naming of ``launcher.naming``, the lock-retrying
live attach and detach-before-delete, and the launcher's one long-lived VPC per region (an
N-node run's private network; no run deletes it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from launcher.errors import ConfigError, ConflictError, NotFoundError
from launcher.naming import LAUNCHER_TAG, parse_tags, run_tag, volume_owner
from launcher.providers.base import (
    Capabilities,
    ClientBacked,
    ImageRef,
    InstanceRef,
    InstanceRequest,
    RunResources,
    SshKeyRef,
    VolumeRef,
    VolumeRequest,
)
from launcher.providers.offers import HOURS_PER_MONTH, OfferTable, Requirement
from launcher.providers.vultr_offers import rank_offers
from launcher.sshkeys import body_of
from launcher.timefmt import parse_time
from launcher.vultr import (
    Block,
    BlockSpec,
    Instance,
    InstanceSpec,
    Plan,
    Snapshot,
    Vpc,
    VultrClient,
    wait_for,
)

NETWORK_PREFIX = "launcher-"  # the launcher's VPC in region r is described "launcher-<r>"
# How long a new volume may take to show its mount_id, and the least time an attach gets to
# become visible once accepted (vultr-csi waits 15 s, reading back each second).
MOUNT_ID_S = 120.0
ATTACH_VISIBLE_S = 15.0
T = TypeVar("T")
CAPABILITIES = Capabilities(volumes=True, tags=True, images="snapshot", boot="cloud-init",
                            ssh_host_keys=True, private_network=True)
NO_ADDRESS = ("", "0.0.0.0", "::")  # what Vultr shows before an instance has its address


def volume_ref(block: Block) -> VolumeRef:
    return VolumeRef(id=block.id, label=block.label, region=block.region,
                     size_gb=block.size_gb, mount_id=block.mount_id,
                     attached_to=block.attached_to, ready=block.status == "active",
                     kind=block.block_type, created_epoch=parse_time(block.date_created),
                     usd_per_hour=block.cost / HOURS_PER_MONTH if block.cost else None)


def instance_ref(instance: Instance) -> InstanceRef:
    """The instance's price is not in its record: :meth:`VultrProvider.plan_prices` has it."""
    return InstanceRef(id=instance.id, label=instance.label, region=instance.region,
                       plan=instance.plan, tags=instance.tags, state=instance.state,
                       ready=instance.is_ready,
                       running=(instance.status, instance.power_status) == ("active", "running"),
                       address="" if instance.main_ip in NO_ADDRESS else instance.main_ip,
                       created_epoch=parse_time(instance.date_created),
                       internal_ip="" if instance.internal_ip in NO_ADDRESS
                       else instance.internal_ip)


def image_ref(snapshot: Snapshot) -> ImageRef:
    return ImageRef(snapshot.id, snapshot.description, snapshot.date_created, snapshot.status,
                    snapshot.size)


def curl_commands(api_url: str, kind: str, resource_id: str,
                  attached_to: str | None = None) -> tuple[str, ...]:
    """The commands that delete a Vultr instance or volume by hand (detaching it first)."""
    base = api_url.rstrip("/")
    auth = '-H "Authorization: Bearer $VULTR_KEY"'
    if kind == "instance":
        return (f"curl -X DELETE {auth} {base}/instances/{resource_id}",)
    commands = []
    if attached_to:
        commands.append(f"curl -X POST {auth} -H \"Content-Type: application/json\" "
                        f"-d '{{\"live\": true}}' {base}/blocks/{resource_id}/detach")
    commands.append(f"curl -X DELETE {auth} {base}/blocks/{resource_id}")
    return tuple(commands)


def plan_price(plan: Plan) -> float:
    """``hourly_cost`` when given, else ``monthly_cost / 730`` (as offers prices a plan)."""
    if plan.hourly_cost is not None and plan.hourly_cost > 0:
        return plan.hourly_cost
    return plan.monthly_cost / HOURS_PER_MONTH


def run_of_volume(label: str) -> str:
    """The run id a volume label names, node k's volume of an N-node run included ("" for a
    reusable or foreign volume); see :func:`launcher.naming.volume_owner`."""
    return volume_owner(label)[0]


def network_description(region: str) -> str:
    """The description of the launcher's VPC in ``region``."""
    return f"{NETWORK_PREFIX}{region}"


def _oldest(vpcs: list[Vpc]) -> Vpc:
    """The one every launcher picks when a race made two: the first created."""
    return min(vpcs, key=lambda v: (parse_time(v.date_created) or 0.0, v.id))


class VultrProvider(ClientBacked):
    """The Vultr provider. ``client`` does the HTTP; this class keeps the contract."""

    name = "vultr"
    title = "Vultr"
    capabilities = CAPABILITIES

    def __init__(self, client: VultrClient) -> None:
        super().__init__(client)
        self.client: VultrClient = client
        self._prices: dict[str, float] = {}
        self._price_types: set[str] = set()

    # -- catalogue ------------------------------------------------------------------------

    def rank_offers(self, requirement: Requirement, *, list_excluded: bool = True
                    ) -> OfferTable:
        return rank_offers(self.client, requirement, list_excluded=list_excluded)

    def plan_prices(self, plan_ids: set[str]) -> dict[str, float | None]:
        """$/h of each plan id: GPU plans read first, every plan type on a miss; read once
        per provider."""
        for plan_type in ("vcg", "all"):
            if plan_ids <= self._prices.keys():
                break
            if plan_type not in self._price_types:
                self._price_types.add(plan_type)
                self._prices.update((p.id, plan_price(p))
                                    for p in self.client.list_plans(type=plan_type))
        return {plan: self._prices.get(plan) for plan in plan_ids}

    def list_images(self) -> tuple[ImageRef, ...]:
        return tuple(map(image_ref, self.client.list_snapshots()))

    def get_image(self, image_id: str) -> ImageRef:
        return image_ref(self.client.get_snapshot(image_id))

    def list_ssh_keys(self) -> tuple[SshKeyRef, ...]:
        return tuple(SshKeyRef(k.id, k.name, k.ssh_key) for k in self.client.list_ssh_keys())

    def delete_commands(self, kind: str, resource_id: str,
                        attached_to: str | None = None) -> tuple[str, ...]:
        return curl_commands(self.client.http.base_url, kind, resource_id, attached_to)

    def find_volumes(self, label: str | None = None) -> tuple[VolumeRef, ...]:
        return tuple(map(volume_ref, self.client.list_blocks(label=label)))

    def get_volume(self, volume_id: str) -> VolumeRef:
        return volume_ref(self.client.get_block(volume_id))

    # -- reads ----------------------------------------------------------------------------

    def find_run(self, run_id: str) -> RunResources:
        instances = self.client.list_instances(tag=run_tag(run_id))
        volumes = [b for b in self.client.list_blocks() if run_of_volume(b.label) == run_id]
        return RunResources(run_id, tuple(map(instance_ref, instances)),
                            tuple(map(volume_ref, volumes)))

    def list_runs(self) -> list[RunResources]:
        instances: dict[str, list[InstanceRef]] = defaultdict(list)
        for instance in self.client.list_instances(tag=LAUNCHER_TAG):
            run_id = parse_tags(instance.tags).run_id
            if run_id:
                instances[run_id].append(instance_ref(instance))
        volumes: dict[str, list[VolumeRef]] = defaultdict(list)
        for block in self.client.list_blocks():
            run_id = run_of_volume(block.label)
            if run_id:
                volumes[run_id].append(volume_ref(block))
        return [RunResources(r, tuple(instances[r]), tuple(volumes[r]))
                for r in sorted(set(instances) | set(volumes))]

    # -- volumes --------------------------------------------------------------------------

    def create_volume(self, request: VolumeRequest) -> VolumeRef:
        spec = BlockSpec(request.region, request.size_gb, request.label, request.kind)
        block = self.client.create_block(spec)
        if not block.mount_id:  # the device's name: only trusted once read back non-empty
            block = self._wait(lambda: self.client.get_block(block.id),
                               lambda b: bool(b.mount_id), MOUNT_ID_S,
                               f"mount_id of volume {block.id}")
        return volume_ref(block)

    def wait_volume_ready(self, volume_id: str, deadline_s: float) -> VolumeRef:
        return volume_ref(self.client.wait_block_active(volume_id, deadline_s=deadline_s))

    def attach_volume(self, volume_id: str, instance_id: str, deadline_s: float) -> VolumeRef:
        def attempt() -> bool:
            try:
                self.client.attach_block(volume_id, instance_id, live=True)
            except ConflictError:  # "Server is currently locked": booting or busy
                return False
            return True

        def look() -> Block | None:
            try:
                return self.client.get_block(volume_id)
            except NotFoundError:  # the run already ended: its runner used and removed it
                return None

        clock = self.client.http.clock
        deadline = clock() + deadline_s
        before = volume_ref(self.client.get_block(volume_id))
        self._wait(attempt, bool, deadline_s, f"attaching volume {volume_id}")
        # Asynchronous on Vultr: vultr-csi reads the volume back until it names the node.
        block = self._wait(look, lambda b: b is None or b.attached_to == instance_id,
                           max(deadline - clock(), ATTACH_VISIBLE_S),
                           f"volume {volume_id} showing it is attached to {instance_id}")
        return volume_ref(block) if block else replace(before, attached_to=instance_id)

    def _wait(self, fetch: Callable[[], T], done: Callable[[T], bool], deadline_s: float,
              what: str) -> T:
        return wait_for(fetch, done, deadline_s=deadline_s, what=what, poll=self.client.poll,
                        sleep=self.client.http.sleep, clock=self.client.http.clock)

    def delete_volume(self, volume_id: str, deadline_s: float = 300) -> bool:
        try:
            block = self.client.get_block(volume_id)
        except NotFoundError:
            return False
        if block.attached_to:
            self.client.detach_block(volume_id, live=True)
            self._wait(lambda: self.client.get_block(volume_id), lambda b: not b.attached_to,
                       deadline_s, f"detaching volume {volume_id}")
        return self.client.delete_block(volume_id)

    # -- instances ------------------------------------------------------------------------

    def create_instance(self, request: InstanceRequest) -> InstanceRef:
        spec = InstanceSpec(request.region, request.plan, request.label,
                            snapshot_id=request.image_id, tags=request.tags,
                            user_data=request.user_data, sshkey_ids=request.ssh_key_ids,
                            attach_vpc=request.network_ids)
        return instance_ref(self.client.create_instance(spec))

    def wait_instance_ready(self, instance_id: str, deadline_s: float) -> InstanceRef:
        return instance_ref(self.client.wait_instance_ready(instance_id, deadline_s=deadline_s))

    def delete_instance(self, instance_id: str) -> bool:
        return self.client.delete_instance(instance_id)

    # -- private network -------------------------------------------------------------------

    def private_network(self, region: str) -> str:
        """The id of the VPC described ``launcher-<region>`` in ``region``, created (Vultr
        choosing the subnet) when there is none. If two launchers raced and made two, every
        caller picks the first created; the other stays unused (a VPC has no price)."""
        found = self._networks(region)
        if not found:
            created = self.client.create_vpc(region, network_description(region))
            # read again: a racing launcher's may be older (or ours not listed yet)
            found = self._networks(region) or [created]
        return _oldest(found).id

    def machine_log(self, instance_id: str, tail: int | None = None) -> str:
        raise ConfigError("Vultr's API hands over no console output of an instance",
                          hint="the instance's console in the Vultr portal shows it")

    def _networks(self, region: str) -> list[Vpc]:
        wanted = network_description(region)
        return [v for v in self.client.list_vpcs()
                if v.region == region and v.description == wanted]

    # -- account SSH keys -------------------------------------------------------------------

    def register_ssh_key(self, name: str, public_key: str) -> str:
        wanted = body_of(public_key)
        for key in self.client.list_ssh_keys():  # read again: another launch may have added it
            if body_of(key.ssh_key) == wanted:
                return key.id
        return self.client.create_ssh_key(name, public_key).id
