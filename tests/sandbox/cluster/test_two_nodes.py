"""Two sandbox machines train one model with real torchrun (gloo, CPU) over loopback, upload
once and delete everything; a node that vanishes mid-training fails the run fast. When node 1
vanishes, node 0 reaps it and salvages its volume (its files under ``nodes/1/`` with a
``salvage.json``), leaving nothing; when node 0 vanishes, node 1 deletes itself and
``launcher gc`` collects node 0 once its liveness record is stale — its volume, holding an
upload never verified, only with ``--force``, as gc's reason says.

"Vanishes": :meth:`ProcessHypervisor.vanish` freezes every process of the machine (SIGSTOP),
so its sockets stay open and silent as a powered-off machine's would. Killing them instead
would close their sockets and the survivor's gloo would notice within a second or so by
itself; a silent peer is the case only the runner's liveness records catch (gloo alone would
wait for its process-group timeout, 30 minutes by default).
"""

from __future__ import annotations

import json
import time

import pytest
from conftest import client_for
from support.keys import FAKE_B2_APP_KEY, FAKE_B2_KEY_ID, FAKE_VULTR_KEY

from launcher.cli import main
from launcher.commands import runcommon
from launcher.operate.cleanup import KEEP_UNVERIFIED
from launcher.operate.runstatus import RunStatus
from sandbox.conftest import SECRET_VALUES
from sandbox.containerbed import wait_until

from .conftest import NODES, RUN_ID, Cluster, launch_cluster, wait_for_text

GLOO_DEFAULT_S = 30 * 60  # torch's default process-group timeout (30 minutes)
PEER_TIMEOUT_S = 10.0
# A lost peer is declared after peer_timeout_s without a fresh liveness record, read every
# few seconds: 10-16 s measured here; the rest is slack for a loaded machine.
FAIL_FAST_S = PEER_TIMEOUT_S + 30
STEPS = 5


@pytest.mark.timeout(420)
def test_two_nodes_train_upload_once_and_leave_nothing(make_bed, ups_python, tmp_path):
    started = time.monotonic()
    cluster: Cluster = launch_cluster(make_bed(), ups_python, steps=STEPS, step_sleep=0.0)
    bed = cluster.bed
    assert cluster.wait_empty(300), cluster.diagnostics()
    for node in cluster.nodes:
        view = bed.hypervisor.wait(node.instance_id, 60)
        assert (view.state, view.exit_code) == ("exited", 0), cluster.diagnostics()
    users = {bed.hypervisor.machine(n.instance_id).trainer_user for n in cluster.nodes}
    assert len(users) == NODES, users  # each machine trains as its own account

    remote = bed.remote(f"runs/{RUN_ID}/")
    checkpoints = [key for key in remote if "/checkpoints/" in key]
    assert checkpoints == [f"runs/{RUN_ID}/nodes/0/checkpoints/step-{STEPS}/model.pt"], \
        sorted(remote)
    for k in range(NODES):
        status = json.loads(bed.fetch(f"runs/{RUN_ID}/nodes/{k}/status.json", tmp_path))
        assert status["state"] == "succeeded", status
        progress = json.loads(bed.fetch(f"runs/{RUN_ID}/nodes/{k}/reports/progress.json",
                                        tmp_path))
        assert (progress["node"], progress["step"]) == (k, STEPS), progress
    report = json.loads(bed.fetch(f"runs/{RUN_ID}/nodes/0/reports/report.json", tmp_path))
    assert report["world_size"] == NODES and report["steps"] == STEPS
    log0 = bed.fetch(f"runs/{RUN_ID}/nodes/0/logs/train.log", tmp_path).decode()
    assert f"step {STEPS} loss" in log0 and "done" in log0, log0[-2000:]
    assert cluster.left() == ([], [])
    cluster.assert_no_secret()
    print(f"2-node run: {time.monotonic() - started:.1f}s from launch to 0 resources left")


def _training(cluster: Cluster, node: int, timeout: float) -> bool:
    return wait_for_text(lambda: cluster.log_text(node, "train.log"), "step 2 loss",
                         timeout) is not None


@pytest.mark.timeout(600)
def test_node_1_vanishing_fails_node_0_fast_and_everything_goes(make_bed, ups_python,
                                                                tmp_path):
    started = time.monotonic()
    cluster = launch_cluster(make_bed(), ups_python, steps=10_000, step_sleep=0.5,
                             peer_timeout_s=PEER_TIMEOUT_S)
    bed = cluster.bed
    assert _training(cluster, 0, 240) and _training(cluster, 1, 30), cluster.diagnostics()
    bed.hypervisor.vanish(cluster.nodes[1].instance_id)
    vanished = time.monotonic()
    failed_s = wait_for_text(lambda: cluster.log_text(0, "runner.log"), "node 1 lost", 120)
    assert failed_s is not None, cluster.diagnostics()
    print(f"node 1 vanished: node 0 failed after {failed_s:.1f}s (gloo's default: "
          f"{GLOO_DEFAULT_S}s)")
    assert failed_s < FAIL_FAST_S
    assert cluster.wait_empty(180), f"left: {cluster.left()}\n{cluster.diagnostics()}"
    print(f"node 1 vanished: 0 resources left after {time.monotonic() - vanished:.1f}s")
    view = bed.hypervisor.wait(cluster.nodes[0].instance_id, 60)
    assert view.state == "exited" and view.exit_code != 0, cluster.diagnostics()
    assert_killed(cluster, 1)
    # node 1 never uploaded: node 0 salvaged its volume before deleting it
    prefix = f"runs/{RUN_ID}/nodes/1/"
    salvaged = sorted(key for key in bed.remote(prefix))
    assert f"{prefix}reports/progress.json" in salvaged, salvaged
    assert f"{prefix}salvage.json" in salvaged, salvaged
    record = json.loads(bed.fetch(f"{prefix}salvage.json", tmp_path))
    assert (record["node"], record["by_node"], record["verified"]) == (1, 0, True), record
    assert record["volume"] == cluster.nodes[1].block_id and record["objects"] >= 1, record
    progress = json.loads(bed.fetch(f"{prefix}reports/progress.json", tmp_path))
    assert progress["node"] == 1 and progress["step"] >= 2, progress
    print(f"node 1 vanished: node 0 salvaged {record['objects']} objects of node 1's volume "
          f"({', '.join(record['folders'])}): {salvaged}")
    cluster.assert_no_secret()
    print(f"node 1 vanished: {time.monotonic() - started:.1f}s from launch")


@pytest.mark.timeout(600)
def test_node_0_vanishing_fails_node_1_fast_and_gc_clears_node_0(make_bed, ups_python,
                                                                 monkeypatch, capsys,
                                                                 tmp_path):
    started = time.monotonic()
    cluster = launch_cluster(make_bed(), ups_python, steps=10_000, step_sleep=0.5,
                             peer_timeout_s=PEER_TIMEOUT_S)
    bed = cluster.bed
    node0, node1 = cluster.nodes
    assert _training(cluster, 0, 240) and _training(cluster, 1, 30), cluster.diagnostics()
    bed.hypervisor.vanish(node0.instance_id)
    vanished = time.monotonic()
    failed_s = wait_for_text(lambda: cluster.log_text(1, "runner.log"), "node 0 lost", 120)
    assert failed_s is not None, cluster.diagnostics()
    print(f"node 0 vanished: node 1 failed after {failed_s:.1f}s (gloo's default: "
          f"{GLOO_DEFAULT_S}s)")
    assert failed_s < FAIL_FAST_S
    assert bed.wait_gone(node1, 180), cluster.diagnostics()
    view = bed.hypervisor.wait(node1.instance_id, 60)
    assert view.state == "exited" and view.exit_code != 0, cluster.diagnostics()
    status1 = RunStatus(json.loads(bed.fetch(f"runs/{RUN_ID}/nodes/1/status.json", tmp_path)))
    assert status1.state == "failed" and status1.upload_verified, status1.data
    assert cluster.left() == ([node0.instance_id], [node0.block_id])  # it cannot delete itself
    print(f"node 0 vanished: node 1 deleted itself after {time.monotonic() - vanished:.1f}s")

    wait_stale(cluster, 0, tmp_path)
    planned = gc_json(cluster, monkeypatch, capsys, "gc", "--json")  # what a user looks at
    instance, volume = planned[node0.instance_id], planned[node0.block_id]
    assert instance["delete"] and "liveness record" in instance["reason"], instance
    assert not volume["delete"], volume  # node 0's data may be only on it: the rule keeps it
    assert KEEP_UNVERIFIED in volume["reason"] and "--force deletes it" in volume["reason"]
    assert cluster.left() == ([node0.instance_id], [node0.block_id])  # a dry run
    # Its checkpoints never left node 0 and the run failed anyway: the user lets them go.
    done = gc_json(cluster, monkeypatch, capsys, "gc", "--yes", "--force", "--json")
    assert done[node0.instance_id]["delete"] and done[node0.block_id]["delete"], done
    assert "--force (no verified upload)" in done[node0.block_id]["reason"], done
    assert cluster.wait_empty(60), f"left: {cluster.left()}"
    assert_killed(cluster, 0)
    cluster.assert_no_secret()
    print(f"node 0 vanished: 0 resources left after gc, {time.monotonic() - started:.1f}s "
          "from launch")


def assert_killed(cluster: Cluster, node: int) -> None:
    """The vanished node's frozen processes were killed when its instance was deleted, and
    the sandbox then deleted its secrets file, as the disk of a deleted instance goes."""
    view = cluster.bed.hypervisor.wait(cluster.nodes[node].instance_id, 60)
    assert view.state == "killed", cluster.diagnostics()


def wait_stale(cluster: Cluster, node: int, tmp_path) -> None:
    """Until node ``node``'s liveness record is older than its own ``stale_after_s``."""
    key = f"runs/{RUN_ID}/cluster/alive/{node}.json"
    record = json.loads(cluster.bed.fetch(key, tmp_path))
    assert record["state"] == "training" and record["stale_after_s"] == PEER_TIMEOUT_S, record
    stale_at = record["at"] + record["stale_after_s"]
    assert wait_until(lambda: time.time() > stale_at + 1, PEER_TIMEOUT_S + 5), record


def gc_json(cluster: Cluster, monkeypatch, capsys, *argv: str) -> dict[str, dict]:
    """``launcher <argv>`` through the CLI against the emulator and the bucket; its JSON
    actions by resource id (each printed)."""
    bed = cluster.bed
    monkeypatch.chdir(bed.tmp)
    for name, value in (("B2_BUCKET", bed.bucket), ("B2_S3_ENDPOINT", bed.server.endpoint),
                        ("B2_APPLICATION_KEY_ID", FAKE_B2_KEY_ID),
                        ("B2_APPLICATION_KEY", FAKE_B2_APP_KEY),
                        ("VULTR_API_URL", bed.emulator.url), ("VULTR_KEY", FAKE_VULTR_KEY),
                        ("COLUMNS", "220")):
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(runcommon, "vultr_client", lambda account: client_for(
        account.vultr_api_url, account.vultr_key.reveal() or None))
    earlier = capsys.readouterr().out  # the test's own lines: shown, not dropped
    assert main(list(argv)) == 0
    out = capsys.readouterr().out
    with capsys.disabled():
        print(f"{earlier}\n$ launcher {' '.join(argv)}\n{out}")
    assert not any(value in out for value in SECRET_VALUES)
    return {action["id"]: action for action in json.loads(out)["actions"]}
