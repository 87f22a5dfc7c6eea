"""A node's supervisor: the cluster phase between health and train, the node in the status,
the final state told to the other nodes at once, and an upload that lands under the node's
own folder only (against the local S3 server)."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path

from launcher.runner import cluster as cluster_phase
from launcher.runner.status import PhaseFailed
from launcher.runner.supervisor import Phases, real_upload, supervise

from .conftest import RUN_ID, private_address, private_mac


def fake_phases(calls: list[str], *, fail: str = "", join=None) -> Phases:
    def step(name: str, value=None):
        calls.append(name)
        if name == fail:
            raise PhaseFailed(name, "broken on purpose")
        return value

    def teardown(ctx, verified):
        calls.append(f"teardown verified={verified}")
        return []

    return Phases(harden=lambda ctx: step("harden"), prepare_volume=lambda ctx: step("volume"),
                  fetch_code=lambda ctx: step("code", Path("/code")),
                  prepare_env=lambda ctx, code_dir: step("env"),
                  sync_data=lambda ctx: step("data"), check_health=lambda ctx, m: step("health"),
                  join_cluster=join or (lambda ctx: step("cluster")),
                  train=lambda ctx, code_dir, beat: step("train", 0), upload=real_upload,
                  upload_heartbeat=lambda ctx: None, teardown=teardown,
                  announce_end=cluster_phase.announce_end)


def alive_record(server, bucket, node: int) -> dict:
    return json.loads(server.s5("cat", f"s3://{bucket}/runs/{RUN_ID}/cluster/alive/{node}.json")
                      .stdout)


def test_the_cluster_phase_runs_between_health_and_train(cluster, s3_server, bucket):
    node = cluster(2)[1]
    (Path(node.ctx.spec.volume.mount_point) / "checkpoints").mkdir()
    (Path(node.ctx.spec.volume.mount_point) / "checkpoints" / "last.pt").write_bytes(b"w" * 10)
    calls: list[str] = []
    assert supervise(node.ctx, fake_phases(calls), signals=False) == 0
    assert calls == ["harden", "volume", "code", "env", "data", "health", "cluster", "train",
                     "teardown verified=True"]
    status = json.loads((Path(node.ctx.spec.paths.state_dir) / "status.json").read_text())
    assert (status["node"], status["nodes"], status["state"]) == (1, 2, "succeeded")
    assert [p["name"] for p in status["phases"]][5:8] == ["health", "cluster", "train"]
    assert alive_record(s3_server, bucket, 1)["state"] == "succeeded"
    keys = s3_server.listing(bucket, f"runs/{RUN_ID}/")
    outside = [k for k in keys if not k.startswith((f"runs/{RUN_ID}/nodes/1/",
                                                    f"runs/{RUN_ID}/cluster/"))]
    assert outside == [] and f"runs/{RUN_ID}/nodes/1/checkpoints/last.pt" in keys
    assert f"runs/{RUN_ID}/nodes/1/status.json" in keys


def test_a_node_that_fails_before_the_barrier_tells_the_others(cluster, s3_server, bucket):
    node = cluster(2)[0]
    calls: list[str] = []
    assert supervise(node.ctx, fake_phases(calls, fail="data"), signals=False) == 1
    assert "cluster" not in calls and "train" not in calls
    assert alive_record(s3_server, bucket, 0)["state"] == "failed"


def test_a_lost_peer_fails_the_run_with_the_cluster_reason(cluster, s3_server):
    node = cluster(2)[0]

    def lost(ctx, code_dir, beat):
        raise PhaseFailed("cluster", "node 1 lost (it failed)")

    phases = replace(fake_phases([]), train=lost)
    assert supervise(node.ctx, phases, signals=False) == 1
    status = json.loads((Path(node.ctx.spec.paths.state_dir) / "status.json").read_text())
    assert status["reason"] == "cluster: node 1 lost (it failed)"


def test_a_spec_without_cluster_has_no_cluster_phase(cluster, s3_server):
    node = cluster(2)[0]
    ctx = replace(node.ctx, spec=replace(node.ctx.spec, cluster=None))
    calls: list[str] = []
    assert supervise(ctx, fake_phases(calls), signals=False) == 0
    assert "cluster" not in calls
    status = json.loads((Path(ctx.spec.paths.state_dir) / "status.json").read_text())
    assert (status["node"], status["nodes"]) == (None, 0)


def test_a_test_host_finds_its_interfaces_under_its_root(cluster):
    nodes = cluster(2)
    done: dict[int, object] = {}

    def one(node) -> None:
        try:
            done[node.index] = Phases.on_test_host(node.root).join_cluster(node.ctx)
        except BaseException as exc:  # the test reads it
            done[node.index] = exc

    threads = [threading.Thread(target=one, args=(n,)) for n in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [getattr(done.get(k), "nic", None) for k in (0, 1)] == [
        cluster_phase.PrivateNic("enp6s0", private_mac(k), private_address(k)) for k in (0, 1)]
