"""An N-node run in ``status``, ``teardown``, ``gc`` and ``run --run-id``: node by node.

The nodes are made as the cluster launch makes them (the region's VPC, label
``<run>-node<k>``, tags plus ``node:<k>``, volume ``<run>-node<k>-cache`` attached live); each
node's files in the bucket come from the runner's own code run as that node (its
``ClusterSpec``), and a liveness record from the runner's own ``peers.publish``."""

from __future__ import annotations

import json
import time

import pytest

from launcher.cli import main
from launcher.naming import instance_tags, node_label, node_tag, volume_label
from launcher.operate.cleanup import execute, plan_gc
from launcher.operate.nodegc import ClusterTimes
from launcher.providers import InstanceRequest, VolumeRequest
from launcher.provision.model import RunStateError
from launcher.provision.plan import check_not_ended
from launcher.runner import peers
from launcher.runner import upload as runner_upload
from launcher.runner.spec import ClusterSpec
from runs.conftest import PLAN, REGION, RUN, SNAPSHOT_ID, Made, runner_context


def make_cluster(provider, run_id: str = RUN, nodes: int = 2) -> list[Made]:
    """Node k: its volume, its instance on the region's VPC, the volume attached."""
    network = provider.private_network(REGION)
    tags = instance_tags(run_id, "diffusion", time.time() + 3600)
    made = []
    for k in range(nodes):
        vol = provider.create_volume(VolumeRequest(REGION, 50,
                                                   volume_label(node_label(run_id, k))))
        inst = provider.create_instance(InstanceRequest(
            REGION, PLAN, SNAPSHOT_ID, node_label(run_id, k), (*tags, node_tag(k)),
            user_data=b"#cloud-config\n{}\n", network_ids=(network,)))
        provider.wait_instance_ready(inst.id, deadline_s=30)
        provider.attach_volume(vol.id, inst.id, deadline_s=10)
        made.append(Made(run_id, inst.id, vol.id))
    return made


def node(k: int) -> ClusterSpec:
    return ClusterSpec(nodes=2, node_index=k)


def alive(tmp_path, s3_server, bucket, k: int, state: str = "training",
          at: float | None = None) -> None:
    """Node k's liveness record, written by the runner's own code."""
    ctx = runner_context(tmp_path / f"alive{k}", s3_server, bucket, RUN, node(k))
    peers.publish(ctx, peers.ALIVE, peers.AliveRecord(k, state, at or time.time()))


def left(client, made: list[Made]) -> tuple[set[str], set[str]]:
    instances = {i.id for i in client.list_instances()}
    blocks = {b.id for b in client.list_blocks()}
    return ({m.instance_id for m in made} & instances, {m.volume_id for m in made} & blocks)


def gone_by_itself(provider, made: Made) -> None:
    """What a node's runner does after its verified upload: its volume, then itself."""
    provider.delete_instance(made.instance_id)
    provider.delete_volume(made.volume_id)


def test_status_shows_every_node(cli_env, provider, client, publish, capsys):
    made = make_cluster(provider)
    publish("finished", RUN, cluster=node(0))
    publish("running", RUN, cluster=node(1))
    ips = {i.id: i.internal_ip for i in provider.find_run(RUN).instances}
    assert all(ips.values()) and len(set(ips.values())) == 2

    assert main(["status", RUN]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {k: next(line for line in lines if line.strip().startswith(f"node {k}"))
            for k in (0, 1)}
    for k, m in enumerate(made):
        assert m.instance_id in rows[k] and ips[m.instance_id] in rows[k]
        assert f"volume {m.volume_id}" in rows[k]
    assert "status succeeded; upload verified" in rows[0]
    assert "status running (train); upload not verified yet" in rows[1]

    assert main(["status", RUN, "--json"]) == 0
    nodes = json.loads(capsys.readouterr().out)["nodes"]
    assert [(n["node"], n["instance"], n["internal_ip"], n["volume"], n["state"],
             n["upload_verified"]) for n in nodes] == [
        (0, made[0].instance_id, ips[made[0].instance_id], made[0].volume_id, "succeeded",
         True),
        (1, made[1].instance_id, ips[made[1].instance_id], made[1].volume_id, "running",
         False)]


def test_teardown_deletes_both_nodes_when_both_uploads_are_verified(cli_env, provider, client,
                                                                    publish, capsys):
    made = make_cluster(provider)
    publish("finished", RUN, cluster=node(0))
    publish("finished", RUN, cluster=node(1))

    assert main(["teardown", RUN, "--yes"]) == 0

    assert left(client, made) == (set(), set())
    assert "STILL EXISTS" not in capsys.readouterr().out


def test_teardown_keeps_the_volume_of_the_node_without_a_verified_upload(
        cli_env, provider, client, publish, capsys):
    made = make_cluster(provider)
    publish("finished", RUN, cluster=node(0))
    publish("finished", RUN, cluster=node(1), verified=False)

    assert main(["teardown", RUN, "--yes"]) == 1

    assert left(client, made) == (set(), {made[1].volume_id})
    out = capsys.readouterr().out
    kept = f"volume {made[1].volume_id} ({volume_label(node_label(RUN, 1))})"
    assert "STILL EXISTS (1)" in out and kept in out
    assert f"/v2/blocks/{made[1].volume_id}" in out


def test_gc_collects_a_node_whose_runner_stopped_and_keeps_its_unverified_volume(
        provider, client, store, publish, s3_server, bucket, tmp_path):
    made = make_cluster(provider)
    publish("running", RUN, cluster=node(0))  # killed mid-training: no final status
    alive(tmp_path, s3_server, bucket, 0)
    publish("finished", RUN, cluster=node(1), exit_code=1)  # failed fast, upload verified
    gone_by_itself(provider, made[1])

    assert plan_gc(provider, store) == []  # its record is fresh: it may still train
    later = time.time() + 120
    actions = plan_gc(provider, store, now=lambda: later)

    assert [(a.kind, a.id, a.delete) for a in actions] == [
        ("instance", made[0].instance_id, True), ("volume", made[0].volume_id, False)]
    why = actions[0].reason
    assert "node 0's runner stopped" in why and "cluster/alive/0.json" in why
    assert "past 60 s (peer_timeout_s, the default" in why
    assert actions[1].reason.startswith("node 0's instance is collected too")
    assert "no verified upload" in actions[1].reason
    outcomes = {o.action.kind: o for o in execute(provider, actions)}
    assert outcomes["instance"].result == "deleted" and outcomes["volume"].result == "kept"
    assert any(f"/v2/blocks/{made[0].volume_id}" in c for c in outcomes["volume"].commands)
    assert left(client, made) == (set(), {made[0].volume_id})
    forced = plan_gc(provider, store, force=True, now=lambda: later)
    assert [(a.id, a.delete) for a in forced] == [(made[0].volume_id, True)]


def test_the_stage_s_peer_timeout_decides_when_it_is_known(provider, store, publish, s3_server,
                                                            bucket, tmp_path):
    make_cluster(provider)
    publish("running", RUN, cluster=node(0))
    publish("running", RUN, cluster=node(1))
    for k in (0, 1):
        alive(tmp_path, s3_server, bucket, k)
    patient = ClusterTimes(600.0, 300.0, "stage diffusion's setting")
    seen = []

    def times(stage: str) -> ClusterTimes:
        seen.append(stage)
        return patient

    assert plan_gc(provider, store, now=lambda: time.time() + 120, stage_times=times) == []
    late = plan_gc(provider, store, now=lambda: time.time() + 700, stage_times=times)
    assert seen[0] == "diffusion" and len([a for a in late if a.kind == "instance"]) == 2
    assert "past 600 s (peer_timeout_s, stage diffusion's setting)" in late[0].reason


def test_a_node_that_never_trained_goes_once_another_failed_longer_than_the_grace(
        provider, store, publish):
    made = make_cluster(provider)
    publish("finished", RUN, cluster=node(1), exit_code=1)
    gone_by_itself(provider, made[1])  # node 0 waits at the barrier, writes no record

    assert plan_gc(provider, store, now=lambda: time.time() + 60) == []
    actions = plan_gc(provider, store, now=lambda: time.time() + 400)

    assert [(a.kind, a.id) for a in actions] == [("instance", made[0].instance_id),
                                                 ("volume", made[0].volume_id)]
    assert "node 0 never wrote a liveness record and node 1 failed" in actions[0].reason
    assert "past reap_grace_s 300 s" in actions[0].reason
    assert not actions[1].delete  # node 0 has no status at all: its data may be there


def test_gc_leaves_a_healthy_run_alone(cli_env, provider, client, publish, s3_server, bucket,
                                       tmp_path, capsys):
    made = make_cluster(provider)
    for k in (0, 1):
        publish("running", RUN, cluster=node(k))
        alive(tmp_path, s3_server, bucket, k)

    assert main(["gc", "--yes", "--json"]) == 0

    assert json.loads(capsys.readouterr().out)["actions"] == []
    assert left(client, made) == ({m.instance_id for m in made}, {m.volume_id for m in made})


def test_a_node_past_training_is_left_to_finish(provider, store, publish, s3_server, bucket,
                                                tmp_path):
    """Its last record says training (the final one was not written), but its status shows
    it uploading: its runner deletes its instance itself."""
    make_cluster(provider)
    publish("finished", RUN, cluster=node(0))
    ctx = runner_context(tmp_path / "n1", s3_server, bucket, RUN, node(1))
    alive(tmp_path, s3_server, bucket, 1)
    with ctx.reporter.phase("upload"):
        assert runner_upload.upload_heartbeat(ctx)

    actions = plan_gc(provider, store, now=lambda: time.time() + 120)

    assert [a.reason for a in actions if a.kind == "instance"] == [
        "node 0 succeeded (status in the bucket)"]


def test_run_id_of_an_ended_cluster_run_is_refused(store, publish):
    publish("running", RUN, cluster=node(0))
    check_not_ended(store, RUN, 2)  # running: it may be resumed

    publish("finished", RUN, cluster=node(1), exit_code=1)

    with pytest.raises(RunStateError) as caught:
        check_not_ended(store, RUN, 2)
    message = caught.value.message
    assert f"run {RUN} already ended (node 1 failed)" in message
    assert "nothing was launched" in message and "leave out --run-id" in message


def test_run_id_of_an_ended_cluster_run_is_refused_without_its_node_count(store, publish):
    """A one-machine stage (``--nodes`` left out) still reads node 0's status."""
    publish("finished", RUN, cluster=node(0))

    with pytest.raises(RunStateError, match=f"run {RUN} already ended \\(node 0 succeeded\\)"):
        check_not_ended(store, RUN, 1)
