"""Node 0's last duty in an N-node run: no other node of the run outlives it.

After its own upload, node 0 waits up to ``cluster.reap_grace_s`` (backoff between looks)
for the run's other instances (tag ``run:<id>``) to delete themselves, as every node does
after its verified upload. Then it deletes each one still there, and that node's volume when
the node's ``nodes/<j>/status.json`` in the bucket shows its upload verified (an upload phase
that ended ok). Otherwise the volume may hold the only copy of that node's outputs: node 0
salvages it (:mod:`launcher.runner.salvage`: attach, mount read-only, upload and verify under
``nodes/<j>/``) and deletes it only when that verified; else it is kept. Everything it could
not delete, or kept, is returned as one left-behind line each, saying exactly what and how to
delete it. Never raises.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from launcher.runner import salvage
from launcher.runner.context import Context
from launcher.runner.s3 import bucket_url, tool_for
from launcher.runner.tools import ToolError, retry_until
from launcher.runner.vultr import (
    ApiError,
    SelfApi,
    refusal_note,
    remove_block,
    run_tag,
)

STATUS_TIMEOUT_S = 60.0


def node_of(instance: dict, nodes: int) -> int | None:
    tags = instance.get("tags") or []
    return next((j for j in range(nodes) if f"node:{j}" in tags), None)


def volume_label(run_id: str, node: int) -> str:
    """Node ``node``'s volume label, as ``launcher.naming`` names it."""
    return f"{run_id}-node{node}-cache"


def upload_verified(ctx: Context, node: int) -> bool:
    """Whether ``<run_root>/nodes/<node>/status.json`` shows an upload phase that ended ok
    (False when it cannot be read)."""
    key = f"{ctx.spec.run_root}/nodes/{node}/status.json"
    try:
        tool = tool_for(ctx, timeout=STATUS_TIMEOUT_S, attempts=2)
        with tempfile.TemporaryDirectory(prefix="reap-", dir=ctx.spec.paths.state_dir) as tmp:
            path = Path(tmp) / "status.json"
            tool.get(bucket_url(ctx, key), str(path))
            status = json.loads(path.read_text(encoding="utf-8"))
    except (ToolError, OSError, ValueError) as exc:
        ctx.log(f"reap: status of node {node} not read: {exc}")
        return False
    phases = status.get("phases") if isinstance(status, dict) else None
    return any(isinstance(p, dict) and p.get("name") == "upload" and p.get("ok") is True
               for p in phases or [])


def reap(ctx: Context, api: SelfApi, own_id: str, *, curl: Callable[[str], str],
         detach_wait_s: float, detach_poll_s: float,
         salvage_options: salvage.SalvageOptions | None = None) -> list[str]:
    """Wait for the run's other instances to go, then delete what is left (see the module
    docstring); the left-behind lines. ``curl(path)`` says how to delete ``path`` by hand.
    ``salvage_options`` default: :func:`launcher.runner.salvage.options_for` with the
    detach limits."""
    cluster = ctx.spec.cluster
    if cluster is None or cluster.node_index != 0:
        return []
    tag = run_tag(ctx.spec.run_id)
    others: dict[str, int | None] = {}

    def all_gone() -> bool:
        others.clear()
        others.update({str(i.get("id")): node_of(i, cluster.nodes)
                       for i in api.list_instances(tag) if str(i.get("id")) != own_id})
        return not others

    try:
        retry_until(all_gone, deadline_s=cluster.reap_grace_s, what="the other nodes' teardown",
                    first_delay=min(2.0, cluster.reap_grace_s / 10 or 0.1), max_delay=15.0,
                    clock=ctx.clock, sleep=ctx.sleep)
        ctx.log("reap: every other node deleted itself")
        return []
    except TimeoutError:
        ctx.reporter.note(f"reap: {len(others)} other node(s) still there after "
                          f"{cluster.reap_grace_s:g}s: deleting them")
    except ApiError as exc:
        return [f"the run's other instances could not be listed ({exc}) — check tag {tag} "
                f"for instances and volumes that still exist{refusal_note(exc)}"]
    left: list[str] = []
    rescue = salvage_options or salvage.options_for(ctx, settle_s=detach_wait_s,
                                                    poll_s=detach_poll_s)
    for iid, node in sorted(others.items()):
        left += _reap_node(ctx, api, (own_id, iid), node, curl, rescue)
    return left


def _reap_node(ctx: Context, api: SelfApi, ids: tuple[str, str], node: int | None,
               curl: Callable[[str], str], rescue: salvage.SalvageOptions) -> list[str]:
    """Delete instance ``ids[1]`` (node ``node``), then its volumes; ``ids[0]`` is node 0's."""
    own_id, iid = ids
    who = f"node {node}" if node is not None else "an untagged node"
    try:
        gone = not api.delete_instance(iid)
        ctx.log(f"reap: instance {iid} ({who}) {'was already gone' if gone else 'deleted'}")
    except ApiError as exc:
        return [f"instance {iid} ({who}) still exists — delete it: "
                f"{curl(f'/instances/{iid}')}{refusal_note(exc)}"]
    if node is None:
        return []
    try:  # Vultr's GET /blocks filters by nothing but the page (Vultr OpenAPI)
        blocks = [b for b in api.pages("/blocks", "blocks")
                  if b.get("label") == volume_label(ctx.spec.run_id, node)
                  or (b.get("attached_to_instance") == iid)]
    except ApiError as exc:
        return [f"volume of {who} not looked for ({exc}) — look for label "
                f"{volume_label(ctx.spec.run_id, node)}{refusal_note(exc)}"]
    if blocks and not upload_verified(ctx, node):
        return [line for block in blocks
                if (line := salvage.salvage(ctx, api, own_id, node, block, curl=curl,
                                            options=rescue))]
    return [line for block in blocks
            if (line := _reap_block(ctx, api, str(block.get("id")), who, curl, rescue))]


def _reap_block(ctx: Context, api: SelfApi, block: str, who: str,
                curl: Callable[[str], str], rescue: salvage.SalvageOptions) -> str:
    """Delete the volume of a node whose upload was verified; the left-behind line or ""."""
    try:
        gone = not remove_block(api, block, wait_s=rescue.settle_s, poll_s=rescue.poll_s)
    except (ApiError, TimeoutError) as exc:
        return (f"volume {block} of {who} still exists — delete it: {curl(f'/blocks/{block}')}"
                f"{refusal_note(exc) or f' ({exc})'}")
    ctx.log(f"reap: volume {block} of {who} {'was already gone' if gone else 'deleted'}")
    return ""

