"""The readiness barrier through the bucket: every node's ready record, each from the instance
the API tags with the run and that node; a stranger's record refused; a deadline."""

from __future__ import annotations

import json
import threading

import pytest

from launcher.runner import peers
from launcher.runner.cluster import ClusterInfo, join
from launcher.runner.status import PhaseFailed

from .conftest import RUN_ID, fast_api, launch_node, private_address, with_changes


def join_all(nodes) -> dict[int, ClusterInfo | BaseException]:
    results: dict[int, ClusterInfo | BaseException] = {}

    def one(node) -> None:
        try:
            results[node.index] = join(node.ctx, node.options(fast_api(node.ctx)))
        except BaseException as exc:  # the test reads it
            results[node.index] = exc

    threads = [threading.Thread(target=one, args=(node,)) for node in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_every_node_passes_when_all_are_ready(cluster, s3_server, bucket):
    nodes = cluster(3)
    results = join_all(nodes)
    infos = [results[k] for k in range(3)]
    assert all(isinstance(info, ClusterInfo) for info in infos), results
    assert {info.master_addr for info in infos} == {private_address(0)}
    assert {info.all_ready_at for info in infos} == {max(r.at for r in infos[0].ready.values())}
    assert infos[0].instances == {n.index: n.instance_id for n in nodes}
    assert [info.node for info in infos] == [0, 1, 2]
    assert nodes[2].ctx.cluster is infos[2]
    keys = s3_server.listing(bucket, f"runs/{RUN_ID}/cluster/ready/")
    assert sorted(keys) == [f"runs/{RUN_ID}/cluster/ready/{k}.json" for k in range(3)]
    record = json.loads(s3_server.s5("cat", f"s3://{bucket}/runs/{RUN_ID}/cluster/ready/1.json")
                        .stdout)
    assert record == {"node": 1, "instance_id": nodes[1].instance_id,
                      "address": private_address(1), "nic": "enp6s0", "at": record["at"]}


def test_a_node_that_never_comes_times_out(cluster, s3_server):
    node = with_changes(cluster(2)[0], s3_server, barrier_timeout_s=1.5)
    with pytest.raises(PhaseFailed) as failed:
        join(node.ctx, node.options(fast_api(node.ctx)))
    assert failed.value.phase == "cluster"
    assert failed.value.reason == ("not every node was ready within 1.5s: no trusted ready "
                                   "record of node(s) 1")


def test_a_strangers_ready_record_is_refused(cluster, client, s3_server):
    nodes = cluster(2)
    stranger, _ = launch_node(client, 1, run_id="someone-else")
    peers.publish(nodes[1].ctx, peers.READY,
                  peers.ReadyRecord(1, stranger.id, "10.9.96.66", "enp6s0", 1.0))
    node = with_changes(nodes[0], s3_server, barrier_timeout_s=1.5)
    with pytest.raises(PhaseFailed) as failed:
        join(node.ctx, node.options(fast_api(node.ctx)))
    assert failed.value.reason.startswith("not every node was ready within 1.5s: no trusted "
                                          "ready record of node(s) 1 (refused: ready record "
                                          f"of node 1 from instance '{stranger.id}'")
    notes = node.ctx.reporter.status.notes
    assert sum("refused a ready record of node 1" in n for n in notes) == 1


def test_a_node_that_failed_before_training_ends_the_wait(cluster, s3_server):
    nodes = cluster(2)
    peers.publish(nodes[1].ctx, peers.ALIVE, peers.AliveRecord(1, "failed", 1.0))
    with pytest.raises(PhaseFailed, match="node 1 failed before training"):
        join(nodes[0].ctx, nodes[0].options(fast_api(nodes[0].ctx)))


def test_an_instance_the_api_does_not_tag_as_this_node_is_refused(cluster, client, s3_server):
    nodes = cluster(2)
    client.delete_instance(nodes[0].instance_id)
    with pytest.raises(PhaseFailed, match=f"this instance \\({nodes[0].instance_id}\\) is not "
                                          "the one the API tags node:0"):
        join(nodes[0].ctx, nodes[0].options(fast_api(nodes[0].ctx)))
