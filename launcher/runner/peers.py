"""The nodes of an N-node run as each node sees them: records in the bucket, tags in the API.

Bucket layout under the run's folder (``RunSpec.run_root``)::

    cluster/ready/<k>.json   node k passed data sync and health:
                             {"node", "instance_id", "address", "nic", "at"}
    cluster/alive/<k>.json   node k's liveness, rewritten while it trains:
                             {"node", "state": "training"|"succeeded"|"failed", "at"}

A record is trusted only for an instance the API lists with the run's tag ``run:<id>`` and
the node's tag ``node:<k>`` (:func:`tagged_nodes`): anything else in the bucket is a
stranger's. Standard library only.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from launcher.runner.context import Context
from launcher.runner.s3 import NO_MATCH, S3Tool, bucket_url, tool_for
from launcher.runner.tools import ToolError
from launcher.runner.vultr import SelfApi, run_tag

READY = "ready"
ALIVE = "alive"
ALIVE_STATES = ("training", "succeeded", "failed")
RECORD_TIMEOUT_S = 60.0


def node_tag(index: int) -> str:
    """The extra tag of node ``index``'s instance (as ``launcher.naming.node_tag`` writes it)."""
    return f"node:{index}"


@dataclass(frozen=True)
class ReadyRecord:
    node: int
    instance_id: str
    address: str
    nic: str
    at: float


@dataclass(frozen=True)
class AliveRecord:
    node: int
    state: str
    at: float
    # How old a "training" record may grow before its node counts as lost: the run's
    # peer_timeout_s, written down so that ``launcher gc`` judges it without the stage.
    stale_after_s: float | None = None


def cluster_url(ctx: Context, kind: str, rel: str = "") -> str:
    return bucket_url(ctx, f"{ctx.spec.run_root}/cluster/{kind}/{rel}")


def record_tool(ctx: Context) -> S3Tool:
    """One quick try per call: every caller polls again on its own schedule."""
    return tool_for(ctx, timeout=RECORD_TIMEOUT_S, attempts=1)


def publish(ctx: Context, kind: str, record: ReadyRecord | AliveRecord,
            tool: S3Tool | None = None) -> None:
    """Write ``cluster/<kind>/<node>.json``; raises ToolError."""
    tool = tool or record_tool(ctx)
    with tempfile.TemporaryDirectory(prefix="cluster-", dir=ctx.spec.paths.state_dir) as tmp:
        path = Path(tmp) / f"{record.node}.json"
        path.write_text(json.dumps(asdict(record), sort_keys=True), encoding="utf-8")
        tool.cp_up(str(path), cluster_url(ctx, kind, path.name))


def read_all(ctx: Context, kind: str, tool: S3Tool | None = None) -> dict[int, dict]:
    """Every ``cluster/<kind>/<k>.json`` as ``{k: decoded JSON}`` (one s5cmd call); a file
    that is not a JSON object named after its node is skipped. Raises ToolError."""
    tool = tool or record_tool(ctx)
    found: dict[int, dict] = {}
    with tempfile.TemporaryDirectory(prefix="cluster-", dir=ctx.spec.paths.state_dir) as tmp:
        try:
            tool.cp_down(cluster_url(ctx, kind, "*"), tmp)
        except ToolError as exc:
            if NO_MATCH in str(exc):
                return found
            raise
        for path in Path(tmp).glob("*.json"):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                node = int(path.stem)
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and data.get("node") == node:
                found[node] = data
    return found


def ready_record(data: dict) -> ReadyRecord | None:
    try:
        return ReadyRecord(int(data["node"]), str(data["instance_id"]), str(data["address"]),
                           str(data["nic"]), float(data["at"]))
    except (KeyError, TypeError, ValueError):
        return None


def alive_record(data: dict) -> AliveRecord | None:
    try:
        stale = data.get("stale_after_s")
        record = AliveRecord(int(data["node"]), str(data["state"]), float(data["at"]),
                             None if stale is None else float(stale))
    except (KeyError, TypeError, ValueError):
        return None
    return record if record.state in ALIVE_STATES else None


def tagged_nodes(api: SelfApi, run_id: str, nodes: int) -> dict[int, str]:
    """``{node index: instance id}`` of the run's instances that carry a ``node:<k>`` tag
    with ``k`` in ``0..nodes-1`` (one instance per node; a second one with the same node tag
    makes that node ambiguous and it is left out)."""
    seen: dict[int, set[str]] = {}
    for instance in api.list_instances(run_tag(run_id)):
        iid = str(instance.get("id") or "")
        tags = instance.get("tags") or []
        for index in range(nodes):
            if iid and node_tag(index) in tags:
                seen.setdefault(index, set()).add(iid)
    return {index: next(iter(ids)) for index, ids in seen.items() if len(ids) == 1}
