"""The cluster phase of an N-node run (``spec.cluster`` set), after health, before train.

1. The private NIC: ``<metadata_url>/v1.json`` ``interfaces[]``, the entry whose
   ``network-type`` is ``private`` (Vultr's VPC interface: its ``mac`` and ``ipv4.address``;
   canonical/cloud-init cloudinit/sources/helpers/vultr.py reads the same list and configures
   every interface after the first with that static address at boot). Its name is the entry of
   ``/sys/class/net`` whose ``address`` is that MAC (cloud-init matches MACs the same way).
2. ``cluster/ready/<k>.json`` goes to the bucket (see :mod:`launcher.runner.peers`).
3. The readiness barrier: until ``barrier_timeout_s`` (backoff between looks), wait for a
   ready record of every node, each from the instance the API tags ``run:<id>`` and
   ``node:<j>``; a record from any other instance is refused (noted, never counted). A peer
   whose liveness record already says ``failed`` ends the wait at once.

The result, :class:`ClusterInfo`, is kept in ``ctx.cluster`` for the train phase
(:mod:`launcher.runner.gang`). Standard library only.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from launcher.runner import peers
from launcher.runner.context import Context
from launcher.runner.retry import RetryPolicy
from launcher.runner.status import PhaseFailed
from launcher.runner.tools import ToolError
from launcher.runner.vultr import ApiError, SelfApi, metadata_document

PHASE = "cluster"
SYS_CLASS_NET = Path("/sys/class/net")
API_TIMEOUT_S = 30.0
API_POLICY = RetryPolicy(max_attempts=None, deadline_s=120.0)
METADATA_DEADLINE_S = 60.0
BARRIER_FIRST_DELAY_S = 1.0
BARRIER_MAX_DELAY_S = 10.0


@dataclass(frozen=True)
class PrivateNic:
    """This machine's interface on the run's private network."""

    name: str
    mac: str
    address: str


@dataclass(frozen=True)
class ClusterInfo:
    """What the barrier established: this node, every node's instance and ready record,
    the rendezvous host (node 0's private address) and when the last node became ready
    (the same on every node: all read the same records)."""

    node: int
    nodes: int
    instance_id: str
    nic: PrivateNic
    instances: dict[int, str]
    ready: dict[int, peers.ReadyRecord]
    master_addr: str
    master_port: int
    all_ready_at: float


@dataclass(frozen=True)
class ClusterOptions:
    """Where the host's interfaces are listed, and the API's client; tests change both."""

    net_dir: Path = SYS_CLASS_NET
    api: SelfApi | None = None
    metadata_deadline_s: float = METADATA_DEADLINE_S


def private_interface(document: dict) -> tuple[str, str]:
    """``(mac, ipv4 address)`` of the ``network-type: private`` entry of v1.json's
    ``interfaces``; PhaseFailed when there is none (the instance is on no private network)."""
    for entry in document.get("interfaces") or []:
        if isinstance(entry, dict) and entry.get("network-type") == "private":
            mac = str(entry.get("mac") or "").lower()
            address = str((entry.get("ipv4") or {}).get("address") or "")
            if mac and address:
                return mac, address
            raise PhaseFailed(PHASE, f"the private interface in the metadata has no "
                                     f"{'mac' if not mac else 'ipv4.address'}")
    raise PhaseFailed(PHASE, "no private network interface in the instance metadata "
                             "(interfaces[] has no network-type 'private'): the instance "
                             "is not attached to the run's VPC")


def interface_named(mac: str, net_dir: Path) -> str:
    """The interface whose ``<net_dir>/<name>/address`` is ``mac``; PhaseFailed if none."""
    for entry in sorted(net_dir.iterdir()) if net_dir.is_dir() else []:
        with contextlib.suppress(OSError):
            if (entry / "address").read_text(encoding="ascii").strip().lower() == mac:
                return entry.name
    raise PhaseFailed(PHASE, f"no network interface has the private MAC {mac} "
                             f"(looked in {net_dir})")


def discover(ctx: Context, options: ClusterOptions) -> tuple[str, PrivateNic]:
    """``(this instance's id, its private NIC)`` from the metadata service."""
    try:
        document = metadata_document(ctx.spec.metadata_url, want="instance-v2-id",
                                     deadline_s=options.metadata_deadline_s,
                                     clock=ctx.clock, sleep=ctx.sleep)
    except ApiError as exc:
        raise PhaseFailed(PHASE, f"instance metadata: {exc}") from None
    mac, address = private_interface(document)
    nic = PrivateNic(interface_named(mac, options.net_dir), mac, address)
    return str(document["instance-v2-id"]), nic


def api_for(ctx: Context) -> SelfApi:
    key = ctx.secrets.get("VULTR_KEY")
    if not key:
        raise PhaseFailed(PHASE, "no VULTR_KEY in the secrets: the run's nodes cannot be "
                                 "listed")
    return SelfApi(ctx.spec.api_url, key, timeout=API_TIMEOUT_S, policy=API_POLICY,
                   clock=ctx.clock, sleep=ctx.sleep)


def join(ctx: Context, options: ClusterOptions | None = None) -> ClusterInfo:
    """The cluster phase: find the private NIC, publish this node's ready record, wait for
    every node's; sets and returns ``ctx.cluster``. Raises PhaseFailed."""
    options = options or ClusterOptions()
    spec = ctx.spec.cluster
    if spec is None:
        raise PhaseFailed(PHASE, "this run is not a cluster run")
    instance, nic = discover(ctx, options)
    ctx.log(f"cluster: node {spec.node_index} of {spec.nodes}: instance {instance}, private "
            f"NIC {nic.name} ({nic.mac}) at {nic.address}")
    record = peers.ReadyRecord(spec.node_index, instance, nic.address, nic.name, ctx.wall())
    try:
        peers.publish(ctx, peers.READY, record)
    except ToolError as exc:
        raise PhaseFailed(PHASE, f"cannot publish the ready record: {exc}") from None
    api = options.api or api_for(ctx)
    barrier = _Barrier(ctx, api, instance)
    info = barrier.wait(nic)
    ctx.cluster = info
    ctx.reporter.note(f"cluster: all {spec.nodes} nodes ready; rendezvous at "
                      f"{info.master_addr}:{info.master_port}")
    return info


@dataclass
class _Barrier:
    ctx: Context
    api: SelfApi
    instance: str
    refused: set[str] = field(default_factory=set)
    problem: str = ""

    def wait(self, nic: PrivateNic) -> ClusterInfo:
        spec = self.ctx.spec.cluster
        assert spec is not None
        deadline = self.ctx.clock() + spec.barrier_timeout_s
        delay = BARRIER_FIRST_DELAY_S
        while True:
            found = self._look()
            if found is not None:
                instances, ready = found
                return ClusterInfo(spec.node_index, spec.nodes, self.instance, nic, instances,
                                   ready, ready[0].address, spec.rdzv_port,
                                   max(r.at for r in ready.values()))
            left = deadline - self.ctx.clock()
            if left <= 0:
                raise PhaseFailed(PHASE, f"not every node was ready within "
                                         f"{spec.barrier_timeout_s:g}s: {self.problem}")
            self.ctx.sleep(min(delay, left))
            delay = min(delay * 2, BARRIER_MAX_DELAY_S)

    def _look(self) -> tuple[dict[int, str], dict[int, peers.ReadyRecord]] | None:
        """Every node's trusted ready record, or None (``problem`` says what is missing)."""
        spec = self.ctx.spec.cluster
        assert spec is not None
        try:
            instances = peers.tagged_nodes(self.api, self.ctx.spec.run_id, spec.nodes)
            records = peers.read_all(self.ctx, peers.READY)
            failed = _failed_peers(self.ctx)
        except (ApiError, ToolError) as exc:
            self.problem = f"last look failed: {exc}"
            return None
        if failed:
            raise PhaseFailed(PHASE, f"node {failed[0]} failed before training")
        if instances.get(spec.node_index) != self.instance:
            raise PhaseFailed(PHASE, f"this instance ({self.instance}) is not the one the API "
                                     f"tags node:{spec.node_index} of run {self.ctx.spec.run_id}")
        ready: dict[int, peers.ReadyRecord] = {}
        for index in range(spec.nodes):
            record = peers.ready_record(records.get(index, {}))
            if record is not None and record.instance_id == instances.get(index):
                ready[index] = record
            elif record is not None:
                self._refuse(index, record)
        missing = [str(i) for i in range(spec.nodes) if i not in ready]
        self.problem = f"no trusted ready record of node(s) {', '.join(missing)}"
        if self.refused:
            self.problem += f" (refused: {'; '.join(sorted(self.refused))})"
        return None if missing else (instances, ready)

    def _refuse(self, index: int, record: peers.ReadyRecord) -> None:
        why = (f"ready record of node {index} from instance {record.instance_id!r}, which the "
               f"API does not tag run:{self.ctx.spec.run_id} node:{index}")
        if why not in self.refused:
            self.refused.add(why)
            self.ctx.reporter.note(f"cluster: refused a {why}")


def _failed_peers(ctx: Context) -> list[int]:
    """Nodes whose liveness record says ``failed`` (a node that failed before training
    says so, so the others stop waiting)."""
    records = (peers.alive_record(d) for d in peers.read_all(ctx, peers.ALIVE).values())
    return sorted(r.node for r in records if r is not None and r.state == "failed")


def announce_end(ctx: Context, state: str) -> None:
    """Write this node's final liveness state (``succeeded``/``failed``) so peers learn at
    once; a failure to write is logged (peers then notice the record going stale)."""
    spec = ctx.spec.cluster
    if spec is None:
        return
    try:
        peers.publish(ctx, peers.ALIVE, peers.AliveRecord(spec.node_index, state, ctx.wall()))
        ctx.log(f"cluster: told the other nodes this node {state}")
    except (ToolError, OSError) as exc:
        ctx.log(f"cluster: could not publish the final state {state}: {exc}")
