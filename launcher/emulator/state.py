"""The emulator's state: one lock, one table per resource, every change a small transaction.

Handlers validate the shape of a request; the :class:`Store` enforces Vultr's rules (stock,
regions, locks, attachment) and raises :class:`Refusal` with the table's text. A change and its
hypervisor hooks run under the lock; if a hook raises, the tables are restored (see
``hypervisor.py``) and :class:`HypervisorError` propagates, which the server answers with 500.
"""

from __future__ import annotations

import copy
import math
import random
import string
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from launcher.emulator import catalogue as cat
from launcher.emulator.errors import HypervisorError, Refusal
from launcher.emulator.hypervisor import Hypervisor
from launcher.emulator.records import (
    NEVER,
    Block,
    Instance,
    Phase,
    Snapshot,
    SshKey,
    instance_phase,
    test_net_ip,
)
from launcher.emulator.timing import Timing
from launcher.emulator.vpcs import VpcTable

_SYMBOLS = string.ascii_letters + string.digits + "#[]{}!"


@dataclass(frozen=True)
class InstanceSpec:
    """A create-instance request after its JSON types were checked."""

    region: str
    plan: str
    os_id: int = 0
    snapshot_id: str = ""
    image_id: str = ""
    app_id: int = 0
    iso_id: str = ""
    label: str = ""
    hostname: str = ""
    tags: tuple[str, ...] = ()
    user_data: str = ""
    sshkey_ids: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    attach_vpc: tuple[str, ...] = ()


def _utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


class Store:
    """All resources. Public methods are thread-safe; records handed out are immutable."""

    def __init__(self, clock: Callable[[], float], timing: Timing, hypervisor: Hypervisor,
                 seed: int | None) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.timing = timing
        self.hypervisor = hypervisor
        self._rng = random.Random(seed)
        self._ips_handed_out = 0
        self.regions = {r["id"]: r for r in cat.REGIONS}
        self.plans = {p["id"]: p for p in cat.PLANS}
        self.metal_plans = {p["id"]: p for p in cat.METAL_PLANS}
        self.operating_systems = {o["id"]: o for o in cat.OPERATING_SYSTEMS}
        self.account = copy.deepcopy(cat.ACCOUNT)
        self.users = {u["id"]: copy.deepcopy(u) for u in cat.USERS}
        self.instances: dict[str, Instance] = {}
        self.blocks: dict[str, Block] = {}
        self.snapshots = {s["id"]: Snapshot(**s) for s in cat.SNAPSHOTS}
        self.ssh_keys = {k["id"]: SshKey(**k) for k in cat.SSH_KEYS}
        self._stock = cat.default_stock()
        self.vpcs = VpcTable(self.lock, self.new_id, self.regions, self._rng, _utc_now)

    # -- plumbing -------------------------------------------------------------------------

    def now(self) -> float:
        """The emulator clock, which every lazily derived status is computed from."""
        return self.clock()

    def new_id(self) -> str:
        """A uuid4, drawn from the seeded generator so a seeded run is reproducible."""
        with self.lock:
            return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        saved = (dict(self.instances), dict(self.blocks), dict(self.snapshots),
                 dict(self.ssh_keys))
        try:
            yield
        except BaseException:
            self.instances, self.blocks, self.snapshots, self.ssh_keys = saved
            raise

    @staticmethod
    def _hook(hook: Callable[..., None], *records: object) -> None:
        try:
            hook(*records)
        except Exception as exc:
            raise HypervisorError(getattr(hook, "__name__", "hook")) from exc

    # -- stock ----------------------------------------------------------------------------

    def set_stock(self, region: str, plan_ids: list[str]) -> None:
        """Replace what ``region`` has in stock (cloud or bare-metal plan ids)."""
        if region not in self.regions:
            raise ValueError(f"unknown region {region!r}")
        unknown = [p for p in plan_ids if p not in self.plans and p not in self.metal_plans]
        if unknown:
            raise ValueError(f"unknown plan ids {unknown!r}")
        with self.lock:
            self._stock[region] = list(dict.fromkeys(plan_ids))

    def stock(self, region: str) -> list[str]:
        """Plan ids in stock in ``region`` (empty for an unknown region)."""
        with self.lock:
            return list(self._stock.get(region, []))

    # -- instances ------------------------------------------------------------------------

    def phase(self, inst: Instance) -> Phase:
        """The instance's status fields now."""
        return instance_phase(inst, self.now(), self.timing)

    def get_instance(self, instance_id: str) -> Instance:
        with self.lock:
            inst = self.instances.get(instance_id)
        if inst is None:
            raise Refusal(404, "instance_not_found")
        return inst

    def list_instances(self, label: str | None, tag: str | None,
                       region: str | None) -> list[Instance]:
        """Instances in creation order, filtered by exact label, tag membership and region."""
        with self.lock:
            found = list(self.instances.values())
        return [i for i in found if (label is None or i.label == label)
                and (tag is None or tag in i.tags) and (region is None or i.region == region)]

    def create_instance(self, spec: InstanceSpec) -> Instance:
        """Check the offer and the boot source, record the instance, tell the hypervisor."""
        with self.lock, self._transaction():
            plan = self._check_offer(spec.region, spec.plan)
            os_id, os_name = self._check_source(spec)
            unknown_keys = [k for k in spec.sshkey_ids if k not in self.ssh_keys]
            if unknown_keys:
                raise Refusal(400, "bad_ssh_key")
            private = self.vpcs.interfaces(spec.region, spec.attach_vpc,
                                           self.instances.values())
            now = self.now()
            inst = Instance(
                id=self.new_id(), region=spec.region, plan=spec.plan, label=spec.label,
                hostname=spec.hostname or "vultr.guest", tags=spec.tags, os_id=os_id,
                os=os_name, snapshot_id=spec.snapshot_id, app_id=0, image_id="",
                user_data=spec.user_data, vcpu_count=plan["vcpu_count"], ram=plan["ram"],
                disk=plan["disk"], allowed_bandwidth=plan["bandwidth"], main_ip=self._next_ip(),
                password=self._password(), features=spec.features, date_created=_utc_now(),
                created_t=now, locked_until=now + self.timing.locked_after_create_s,
                private=private)
            self.instances[inst.id] = inst
            self._hook(self.hypervisor.instance_created, inst)
            return inst

    def _check_offer(self, region: str, plan_id: str) -> dict:
        if region not in self.regions:
            raise Refusal(400, "bad_region")
        plan = self.plans.get(plan_id)
        if plan is None:
            raise Refusal(400, "bad_plan")
        if plan_id not in self._stock.get(region, []):
            raise Refusal(400, "out_of_stock")
        return plan

    def _check_source(self, spec: InstanceSpec) -> tuple[int, str]:
        given = [name for name in ("os_id", "snapshot_id", "image_id", "app_id", "iso_id")
                 if getattr(spec, name)]
        if not given:
            raise Refusal(400, "no_source")
        if len(given) > 1:
            raise Refusal(400, "many_sources")
        if spec.snapshot_id:
            if spec.snapshot_id not in self.snapshots:
                raise Refusal(400, "bad_snapshot")
            return cat.SNAPSHOT_OS_ID, self.operating_systems[cat.SNAPSHOT_OS_ID]["name"]
        if spec.os_id:
            record = self.operating_systems.get(spec.os_id)
            if record is None or spec.os_id in cat.PSEUDO_OS_IDS:
                raise Refusal(400, "bad_os")
            return spec.os_id, record["name"]
        raise Refusal(400, "bad_iso" if spec.iso_id else "bad_app")

    def _next_ip(self) -> str:
        self._ips_handed_out += 1
        return test_net_ip(self._ips_handed_out - 1)

    def _password(self) -> str:
        return "".join(self._rng.choice(_SYMBOLS) for _ in range(16))

    def delete_instance(self, instance_id: str) -> None:
        """Delete; every attached volume is detached first, as Vultr does."""
        with self.lock, self._transaction():
            inst = self.get_instance(instance_id)
            del self.instances[instance_id]
            for block in [b for b in self.blocks.values() if b.attached_to == instance_id]:
                detached = replace(block, attached_to="")
                self.blocks[block.id] = detached
                self._hook(self.hypervisor.volume_detached, inst, detached)
            self._hook(self.hypervisor.instance_deleted, inst)

    def force_instance(self, instance_id: str, **changes: object) -> Instance:
        """Tests only: overwrite fields of an instance (e.g. ``locked_until``, ``created_t``)."""
        with self.lock:
            inst = replace(self.get_instance(instance_id), **changes)
            self.instances[instance_id] = inst
            return inst

    def lock_instance(self, instance_id: str, seconds: float = math.inf) -> Instance:
        """Tests only: make the instance report ``server_status: locked`` for ``seconds``."""
        return self.force_instance(instance_id, locked_until=self.now() + seconds)

    # -- snapshots and ssh keys -----------------------------------------------------------

    def get_snapshot(self, snapshot_id: str) -> Snapshot:
        with self.lock:
            snap = self.snapshots.get(snapshot_id)
        if snap is None:
            raise Refusal(404, "snapshot_not_found")
        return snap

    def list_snapshots(self, description: str | None) -> list[Snapshot]:
        """Snapshots in creation order; ``description`` filters by exact match."""
        with self.lock:
            found = list(self.snapshots.values())
        return [s for s in found if description is None or s.description == description]

    def create_snapshot(self, instance_id: str, description: str) -> Snapshot:
        with self.lock:
            inst = self.get_instance(instance_id)
            snap = Snapshot(id=self.new_id(), description=description,
                            size=inst.disk * 1024**3 // 4, os_id=inst.os_id, app_id=0,
                            date_created=_utc_now(), created_t=self.now())
            self.snapshots[snap.id] = snap
            return snap

    def seed_snapshot(self, description: str, date_created: str, *, complete: bool = True,
                      size: int = 32 * 1024**3, os_id: int = 1743) -> Snapshot:
        """Tests only: add a snapshot dated ``date_created`` (ISO 8601) that is ``complete``
        from the start, or ``pending`` for ever (``complete=False``), whatever the timing."""
        with self.lock:
            snap = Snapshot(id=self.new_id(), description=description, size=size, os_id=os_id,
                            app_id=0, date_created=date_created,
                            created_t=NEVER if complete else math.inf)
            self.snapshots[snap.id] = snap
            return snap

    def delete_snapshot(self, snapshot_id: str) -> None:
        with self.lock:
            self.get_snapshot(snapshot_id)
            del self.snapshots[snapshot_id]

    def get_ssh_key(self, key_id: str) -> SshKey:
        with self.lock:
            key = self.ssh_keys.get(key_id)
        if key is None:
            raise Refusal(404, "ssh_key_not_found")
        return key

    def list_ssh_keys(self) -> list[SshKey]:
        with self.lock:
            return list(self.ssh_keys.values())

    def create_ssh_key(self, name: str, ssh_key: str) -> SshKey:
        with self.lock:
            key = SshKey(id=self.new_id(), name=name, ssh_key=ssh_key, date_created=_utc_now())
            self.ssh_keys[key.id] = key
            return key

    def delete_ssh_key(self, key_id: str) -> None:
        with self.lock:
            self.get_ssh_key(key_id)
            del self.ssh_keys[key_id]

    # -- block storage --------------------------------------------------------------------

    def get_block(self, block_id: str) -> Block:
        with self.lock:
            block = self.blocks.get(block_id)
        if block is None:
            raise Refusal(404, "block_not_found")
        return block

    def list_blocks(self) -> list[Block]:
        with self.lock:
            return list(self.blocks.values())

    def create_block(self, region: str, size_gb: int, label: str, block_type: str) -> Block:
        """Check region, type and size; the volume starts pending."""
        if region not in self.regions:
            raise Refusal(400, "bad_region")
        if block_type not in cat.BLOCK_TYPES:
            raise Refusal(400, "bad_block_type")
        if cat.BLOCK_OPTION[block_type] not in self.regions[region]["options"]:
            raise Refusal(400, "block_type_unavailable", block_type=block_type)
        _check_block_size(block_type, size_gb)
        with self.lock:
            block = Block(id=self.new_id(), region=region, size_gb=size_gb, label=label,
                          block_type=block_type,
                          mount_id=f"{region}-{self._rng.getrandbits(48):012x}",
                          date_created=_utc_now(), created_t=self.now())
            self.blocks[block.id] = block
            return block

    def update_block(self, block_id: str, label: str | None, size_gb: int | None) -> None:
        """Relabel and/or grow a volume (Vultr cannot shrink one)."""
        with self.lock:
            block = self.get_block(block_id)
            if size_gb is not None:
                if size_gb < block.size_gb:
                    raise Refusal(400, "shrink_block")
                _check_block_size(block.block_type, size_gb)
                block = replace(block, size_gb=size_gb)
            if label is not None:
                block = replace(block, label=label)
            self.blocks[block_id] = block

    def delete_block(self, block_id: str) -> None:
        with self.lock:
            if self.get_block(block_id).attached_to:
                raise Refusal(400, "delete_attached")
            del self.blocks[block_id]

    def attach_block(self, block_id: str, instance_id: str, live: bool) -> Instance:
        """Attach; ``live=False`` reboots the instance (counted in ``reboots``)."""
        with self.lock, self._transaction():
            block = self.get_block(block_id)
            inst = self.get_instance(instance_id)
            if block.attached_to:
                raise Refusal(400, "already_attached")
            if block.region != inst.region:
                raise Refusal(400, "region_mismatch")
            if self.phase(inst).locked:
                raise Refusal(400, "instance_locked")
            inst = self._after_disk_change(inst, live)
            block = replace(block, attached_to=inst.id, attached_t=self.now())
            self.blocks[block.id] = block
            self._hook(self.hypervisor.volume_attached, inst, block)
            return inst

    def detach_block(self, block_id: str, live: bool) -> Instance:
        """Detach; ``live=False`` reboots the instance.

        No lock check: Vultr's clients meet "Server is currently locked" on attach, and a runner
        that detaches before deleting itself must not be refused by a made-up rule.
        """
        with self.lock, self._transaction():
            block = self.get_block(block_id)
            if not block.attached_to:
                raise Refusal(400, "not_attached")
            inst = self._after_disk_change(self.get_instance(block.attached_to), live)
            block = replace(block, attached_to="")
            self.blocks[block.id] = block
            self._hook(self.hypervisor.volume_detached, inst, block)
            return inst

    def _after_disk_change(self, inst: Instance, live: bool) -> Instance:
        inst = replace(inst, locked_until=self.now() + self.timing.locked_after_attach_s,
                       reboots=inst.reboots + (0 if live else 1))
        self.instances[inst.id] = inst
        return inst


def _check_block_size(block_type: str, size_gb: int) -> None:
    low, high, _ = cat.BLOCK_TYPES[block_type]
    if not low <= size_gb <= high:
        raise Refusal(400, "bad_block_size", block_type=block_type, low=low, high=high)
