"""Node 0's teardown reaps: after a grace it deletes the run's other instances still alive,
and each one's volume only when that node's status in the bucket shows a verified upload."""

from __future__ import annotations

import json
import threading
from dataclasses import replace

from launcher.runner.teardown import teardown
from runner.lifecycle.conftest import FAST, closed_port_url

from .conftest import RUN_ID, fast_api, make_context, with_changes


def status_of(node: int, upload_ok: bool) -> bytes:
    phases = [{"name": "train", "ok": True}, {"name": "upload", "ok": upload_ok,
                                              "detail": "verified" if upload_ok else "x"}]
    return json.dumps({"run_id": RUN_ID, "state": "running", "phases": phases,
                       "node": node, "nodes": 2}).encode()


def put_status(server, bucket, tmp_path, node: int, upload_ok: bool) -> None:
    source = tmp_path / f"status-{node}.json"
    source.write_bytes(status_of(node, upload_ok))
    server.put(bucket, f"runs/{RUN_ID}/nodes/{node}/status.json", source)


def node0_teardown(node) -> list[str]:
    return teardown(node.ctx, True, final_upload=lambda ctx: None, options=FAST,
                    api=fast_api(node.ctx))


def exists(emulator, *ids: str) -> list[bool]:
    state = emulator.state
    return [i in state.instances or i in state.blocks for i in ids]


def test_a_stuck_node_with_a_verified_upload_is_deleted_with_its_volume(
        cluster, emulator, s3_server, bucket, tmp_path):
    nodes = cluster(2)
    put_status(s3_server, bucket, tmp_path, 1, upload_ok=True)
    assert node0_teardown(nodes[0]) == []
    assert exists(emulator, nodes[0].instance_id, nodes[0].block_id, nodes[1].instance_id,
                  nodes[1].block_id) == [False, False, False, False]
    assert any("1 other node(s) still there after 1s" in n
               for n in nodes[0].ctx.reporter.status.notes)


def test_a_stuck_node_without_a_verified_upload_keeps_its_volume_and_says_so(
        cluster, emulator, s3_server, bucket, tmp_path):
    nodes = cluster(2)
    put_status(s3_server, bucket, tmp_path, 1, upload_ok=False)
    left = node0_teardown(nodes[0])
    assert exists(emulator, nodes[1].instance_id, nodes[1].block_id) == [False, True]
    assert len(left) == 1
    # Its salvage (test_salvage.py) finds no device here: this emulator plays no machines.
    assert left[0].startswith(f"volume {nodes[1].block_id} of node 1 kept: its upload was not "
                              "verified and it was not salvaged (the device of serial ")
    assert " — recover its data, then delete it: curl -X DELETE" in left[0]
    assert left[0].endswith(f"/blocks/{nodes[1].block_id}")
    assert emulator.state.blocks[nodes[1].block_id].attached_to == ""
    assert nodes[0].ctx.reporter.status.left_behind == left
    assert not exists(emulator, nodes[0].instance_id)[0]


def test_a_node_with_no_status_at_all_keeps_its_volume(cluster, emulator):
    nodes = cluster(2)
    left = node0_teardown(nodes[0])
    assert exists(emulator, nodes[1].instance_id, nodes[1].block_id) == [False, True]
    assert [line.split(" kept:")[0] for line in left] == [f"volume {nodes[1].block_id} of node 1"]


def test_nodes_that_delete_themselves_within_the_grace_are_left_alone(
        cluster, emulator, client, s3_server):
    nodes = cluster(2)
    node = with_changes(nodes[0], s3_server, reap_grace_s=20.0)
    threading.Timer(1.0, lambda: client.delete_instance(nodes[1].instance_id)).start()
    assert node0_teardown(node) == []
    deletes = [e for e in emulator.mutations() if e.method == "DELETE"]
    assert len([e for e in deletes if e.route == "/instances/{id}"]) == 2  # node 1's own, node 0
    assert exists(emulator, nodes[1].block_id) == [True]  # node 1's own teardown's business
    assert not any("still there" in n for n in node.ctx.reporter.status.notes)


def test_only_node_0_reaps_and_a_node_finds_itself_by_its_node_tag(cluster, emulator,
                                                                   s3_server):
    node = cluster(2)[1]
    spec = replace(node.ctx.spec, metadata_url=closed_port_url())  # metadata down: the tags
    node = replace(node, ctx=make_context(spec, s3_server))
    assert teardown(node.ctx, True, final_upload=lambda ctx: None, options=FAST,
                    api=fast_api(node.ctx)) == []
    instances = emulator.state.instances
    assert node.instance_id not in instances and len(instances) == 1  # node 0 left alone
