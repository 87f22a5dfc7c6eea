"""Training on one node of an N-node run: the command under torchrun, and gang semantics.

``launch: torchrun`` — the stage's command must start with a python interpreter; the runner
runs ``<that python> -m torch.distributed.run`` with a fixed ``--nnodes``, the c10d
rendezvous on node 0's private address, ``--max-restarts=0``, ``--local-addr`` = this node's
private address, then the rest of the command (flags as torchrun 2.13's ``--help`` lists
them; pytorch/pytorch torch/distributed/run.py). ``--rdzv-conf=is_host=1`` on node 0 and
``is_host=0`` on the others: without it torchrun guesses whether it hosts the store by
matching the endpoint against the machine's hostname and addresses, which "may return a
false negative if this machine has ... IP addresses assigned to secondary NICs" (pytorch/
pytorch torch/distributed/elastic/rendezvous/utils.py ``_matches_machine_hostname``; the
VPC NIC is one), and an explicit value is obeyed without a fallback (c10d_rendezvous_backend.py
``_create_tcp_store``). On a test host every node's address is a loopback one, which the
same guess takes for "this machine" on every node: hence ``is_host=0`` stated too.
``launch: env`` — the command runs as given (it starts torchrun itself).

Both modes get ``NCCL_SOCKET_IFNAME``/``GLOO_SOCKET_IFNAME`` = the private NIC and
``LAUNCHER_NODE_RANK`` (the launcher's node index; torchrun orders its own ranks by the
string order of ``--local-addr``), ``LAUNCHER_NNODES``, ``LAUNCHER_MASTER_ADDR`` and
``LAUNCHER_MASTER_PORT``.

Gang semantics (:class:`GangWatch`): while training, this node rewrites
``cluster/alive/<k>.json`` every few seconds and reads the others'. A peer whose record says
``failed``, whose record has not changed for ``peer_timeout_s`` (measured on this node's own
clock, so clock skew between nodes does not matter), or whose instance the API no longer
lists, is lost: training stops (its process group and every process of the trainer user:
torchrun's workers run in their own sessions) and the run fails with ``cluster: node <j> lost
(...)``. A peer that succeeded is never lost.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from launcher.runner import peers, train
from launcher.runner.cluster import ClusterInfo, api_for
from launcher.runner.context import Context
from launcher.runner.spec import ClusterSpec
from launcher.runner.status import PhaseFailed
from launcher.runner.tools import ToolError
from launcher.runner.vultr import ApiError, SelfApi, run_tag

PYTHON = re.compile(r"^python(\d+(\.\d+)*)?$")
ALIVE_EVERY_S = 5.0
API_EVERY_S = 30.0


def torchrun_argv(command: tuple[str, ...], info: ClusterInfo, cluster: ClusterSpec,
                  run_id: str) -> list[str]:
    """``<python> -m torch.distributed.run <flags> <rest of command>``; PhaseFailed when the
    command does not start with a python interpreter and a script or ``-m module``."""
    if not command or not PYTHON.match(Path(command[0]).name):
        raise PhaseFailed("train", f"launch torchrun runs the command under torchrun, so it "
                                   f"must start with a python interpreter (python, python3, "
                                   f"a venv's python), not {command[:1]!r}; a command that "
                                   f"starts torchrun itself needs cluster launch 'env'")
    rest = list(command[1:])
    if not rest or (rest[0].startswith("-") and rest[0] != "-m"):
        raise PhaseFailed("train", "launch torchrun needs a script (or -m module) right after "
                                   f"the python interpreter, not {rest[:1]!r}; python options "
                                   "have no place there (use cluster launch 'env')")
    is_host = 1 if info.node == 0 else 0
    return [command[0], "-m", "torch.distributed.run", f"--nnodes={info.nodes}",
            f"--nproc-per-node={cluster.nproc_per_node}", "--rdzv-backend=c10d",
            f"--rdzv-endpoint={info.master_addr}:{info.master_port}", f"--rdzv-id={run_id}",
            "--max-restarts=0", f"--local-addr={info.nic.address}",
            f"--rdzv-conf=is_host={is_host}", *rest]


def cluster_env(info: ClusterInfo) -> dict[str, str]:
    """What every node's command gets on top of the trainer's environment."""
    return {"NCCL_SOCKET_IFNAME": info.nic.name, "GLOO_SOCKET_IFNAME": info.nic.name,
            "LAUNCHER_NODE_RANK": str(info.node), "LAUNCHER_NNODES": str(info.nodes),
            "LAUNCHER_MASTER_ADDR": info.master_addr,
            "LAUNCHER_MASTER_PORT": str(info.master_port)}


@dataclass(frozen=True)
class GangOptions:
    """How often the liveness records and the API are looked at; ``api`` for tests."""

    alive_every_s: float = ALIVE_EVERY_S
    api_every_s: float = API_EVERY_S
    api: SelfApi | None = None


@dataclass
class GangWatch:
    """:meth:`check` every :attr:`every_s` seconds: publish this node's ``training`` record,
    then return why a peer is lost ("" while none is)."""

    ctx: Context
    info: ClusterInfo
    api: SelfApi
    options: GangOptions = field(default_factory=GangOptions)
    _seen: dict[int, tuple[float, float]] = field(default_factory=dict)
    _done: set[int] = field(default_factory=set)
    _next_api: float = float("-inf")
    _started: float = 0.0

    def __post_init__(self) -> None:
        self._started = self.ctx.clock()

    @property
    def every_s(self) -> float:
        timeout = self._timeout()
        return max(0.05, min(self.options.alive_every_s, timeout / 3))

    def _timeout(self) -> float:
        cluster = self.ctx.spec.cluster
        return cluster.peer_timeout_s if cluster is not None else 60.0

    def peers(self) -> list[int]:
        return [j for j in range(self.info.nodes) if j != self.info.node and j not in self._done]

    def check(self) -> str:
        self._publish("training")
        return self._records() or self._api()

    def _publish(self, state: str) -> None:
        try:
            peers.publish(self.ctx, peers.ALIVE,
                          peers.AliveRecord(self.info.node, state, self.ctx.wall(),
                                            self._timeout()))
        except (ToolError, OSError) as exc:
            self.ctx.log(f"cluster: liveness record not written: {exc}")

    def _read(self) -> dict[int, peers.AliveRecord] | None:
        try:
            found = peers.read_all(self.ctx, peers.ALIVE)
        except (ToolError, OSError) as exc:
            self.ctx.log(f"cluster: liveness records not read: {exc}")
            return None
        records = {j: peers.alive_record(data) for j, data in found.items()}
        return {j: r for j, r in records.items() if r is not None}

    def _records(self) -> str:
        records = self._read()
        now = self.ctx.clock()
        for j in self.peers():
            record = (records or {}).get(j)
            if record is not None and record.state == "succeeded":
                self._done.add(j)
                continue
            if record is not None and record.state == "failed":
                return f"node {j} lost (it failed)"
            if record is not None and self._seen.get(j, (None,))[0] != record.at:
                self._seen[j] = (record.at, now)
            since = self._seen.get(j, (None, self._started))[1]
            if now - since >= self._timeout():
                return (f"node {j} lost (no fresh liveness record for {now - since:.0f}s; "
                        f"peer_timeout_s {self._timeout():g})")
        return ""

    def _api(self) -> str:
        now = self.ctx.clock()
        if now < self._next_api:
            return ""
        self._next_api = now + self.options.api_every_s
        try:
            listed = {str(i.get("id")) for i in self.api.list_instances(
                run_tag(self.ctx.spec.run_id))}
        except ApiError as exc:
            self.ctx.log(f"cluster: the run's instances not listed: {exc}")
            return ""
        gone = [j for j in self.peers() if self.info.instances.get(j) not in listed]
        if gone:
            self._records()  # a peer that succeeded may already have deleted itself
        gone = [j for j in gone if j not in self._done]
        if gone:
            j = gone[0]
            return f"node {j} lost (its instance {self.info.instances.get(j)} is gone)"
        return ""


def run(ctx: Context, code_dir: str | Path, heartbeat: Callable[[], None], *,
        reserve_s: float, options: GangOptions | None = None) -> int:
    """``train.run`` for one node: the cluster's argv and environment, the gang watch."""
    spec = ctx.spec.cluster
    info = ctx.cluster
    if spec is None or not isinstance(info, ClusterInfo):
        raise PhaseFailed("train", "the cluster phase did not run")
    options = options or GangOptions()
    if spec.launch == "torchrun":
        argv = torchrun_argv(ctx.spec.command, info, spec, ctx.spec.run_id)
    else:
        argv = list(ctx.spec.command)
    watch = GangWatch(ctx, info, options.api or api_for(ctx), options)
    launch = train.Launch(tuple(argv), cluster_env(info), watch)
    return train.run(ctx, code_dir, heartbeat, reserve_s=reserve_s, launch=launch)


def reserve_s(info: ClusterInfo, deadline_epoch: float, most_s: float, share: float) -> float:
    """The time kept for upload and teardown, the same on every node: computed from when
    the last node became ready (every node read the same records), not from this node's
    own start."""
    return min(most_s, max(deadline_epoch - info.all_ready_at, 0.0) * share)
