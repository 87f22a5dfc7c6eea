"""Gang semantics on a real training process: a peer that failed, went silent or whose
instance is gone stops this node's training — its process group and every process of the
trainer user, a worker in a session of its own included — and fails the run with
``cluster: node <j> lost (...)``. A peer that succeeded is not lost. Launch ``env`` runs the
command as given, with the cluster's environment."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from launcher.runner import gang, peers
from launcher.runner.statefiles import alive, pids_of_user
from launcher.runner.status import PhaseFailed
from runner.machine.conftest import IS_ROOT, child_python, trainer_name, world  # noqa: F401

from .conftest import RUN_ID, fast_api
from .test_barrier import join_all

CHILD = r'''
import json, os, subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                          start_new_session=True)
out = {"argv": sys.argv[1:], "env": dict(os.environ), "pid": os.getpid(), "worker": worker.pid}
with open(os.path.join(os.environ["LAUNCHER_REPORT_DIR"], "child.json"), "w") as handle:
    json.dump(out, handle)
time.sleep(float(sys.argv[1]))
worker.kill()
'''


@pytest.fixture
def gang_nodes(cluster, world, trainer_name, child_python):  # noqa: F811 - fixtures
    def make(seconds: float = 60.0, **settings):
        nodes = cluster(2, base=world, trainer_user=trainer_name, launch="env",
                        command=(child_python, "child.py", str(seconds)), **settings)
        for node in nodes:
            (node.root / "code").mkdir(mode=0o755)
            (node.root / "code" / "child.py").write_text(CHILD)
        results = join_all(nodes)
        assert all(not isinstance(r, BaseException) for r in results.values()), results
        return nodes
    return make


def train(node) -> int:
    options = gang.GangOptions(alive_every_s=0.2, api_every_s=0.3, api=fast_api(node.ctx))
    return gang.run(node.ctx, node.root / "code", lambda: None, reserve_s=0.0, options=options)


def child_record(node) -> dict:
    return json.loads((Path(node.ctx.spec.volume.mount_point) / "reports/child.json").read_text())


def later(seconds: float, action) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def assert_stopped(node, trainer: str, failed: pytest.ExceptionInfo, why: str) -> None:
    assert failed.value.phase == "cluster"
    assert failed.value.reason.startswith(f"node 1 lost ({why}"), failed.value.reason
    record = child_record(node)
    assert not alive(record["pid"]) and not alive(record["worker"])
    if IS_ROOT:
        import pwd
        assert pids_of_user(pwd.getpwnam(trainer).pw_uid) == []
    assert any("stopping the training" in n for n in node.ctx.reporter.status.notes)


def test_a_peer_that_failed_stops_training(gang_nodes, trainer_name):  # noqa: F811
    nodes = gang_nodes()
    later(1.0, lambda: peers.publish(nodes[1].ctx, peers.ALIVE,
                                     peers.AliveRecord(1, "failed", time.time())))
    started = time.monotonic()
    with pytest.raises(PhaseFailed) as failed:
        train(nodes[0])
    assert time.monotonic() - started < 30
    assert_stopped(nodes[0], trainer_name, failed, "it failed")


def test_a_silent_peer_is_lost_after_peer_timeout(gang_nodes, trainer_name):  # noqa: F811
    nodes = gang_nodes(peer_timeout_s=2.0)
    started = time.monotonic()
    with pytest.raises(PhaseFailed) as failed:
        train(nodes[0])
    assert 2.0 <= time.monotonic() - started < 30
    assert_stopped(nodes[0], trainer_name, failed, "no fresh liveness record for ")
    assert "peer_timeout_s 2)" in failed.value.reason


def test_a_peer_whose_instance_is_gone_is_lost(gang_nodes, client, trainer_name):  # noqa: F811
    nodes = gang_nodes()
    peers.publish(nodes[1].ctx, peers.ALIVE, peers.AliveRecord(1, "training", time.time()))
    later(1.0, lambda: client.delete_instance(nodes[1].instance_id))
    with pytest.raises(PhaseFailed) as failed:
        train(nodes[0])
    assert_stopped(nodes[0], trainer_name, failed,
                   f"its instance {nodes[1].instance_id} is gone")


def test_a_peer_that_succeeded_is_not_lost(gang_nodes, client, s3_server, bucket):
    nodes = gang_nodes(seconds=3.0, peer_timeout_s=1.0)
    peers.publish(nodes[1].ctx, peers.ALIVE, peers.AliveRecord(1, "succeeded", time.time()))
    client.delete_instance(nodes[1].instance_id)
    assert train(nodes[0]) == 0
    record = child_record(nodes[0])
    assert record["argv"] == ["3.0"]  # launch env: the command as given
    env = record["env"]
    assert {k: env[k] for k in ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME", "LAUNCHER_NODE_RANK",
                                "LAUNCHER_NNODES", "LAUNCHER_MASTER_ADDR",
                                "LAUNCHER_MASTER_PORT")} == {
        "NCCL_SOCKET_IFNAME": "enp6s0", "GLOO_SOCKET_IFNAME": "enp6s0",
        "LAUNCHER_NODE_RANK": "0", "LAUNCHER_NNODES": "2",
        "LAUNCHER_MASTER_ADDR": "10.9.96.3", "LAUNCHER_MASTER_PORT": "29400"}
    assert "VULTR_KEY" not in env
    mine = json.loads(s3_server.s5("cat", f"s3://{bucket}/runs/{RUN_ID}/cluster/alive/0.json")
                      .stdout)
    assert mine["node"] == 0 and mine["state"] == "training"
