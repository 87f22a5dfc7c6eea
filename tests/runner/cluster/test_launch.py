"""The command line and environment of a node's training: under torchrun (node 0 hosts the
rendezvous store, the others do not) or as given (launch ``env``); and the refusals."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support.need import need

from launcher.runner import peers
from launcher.runner.cluster import ClusterInfo, PrivateNic
from launcher.runner.gang import cluster_env, reserve_s, torchrun_argv
from launcher.runner.spec import ClusterSpec
from launcher.runner.status import PhaseFailed

UPS_PYTHON = Path(__file__).resolve().parents[3] / ".venv-ups" / "bin" / "python"
COMMAND = ("/opt/venv/bin/python", "train.py", "--config", "a b.yaml")


def info(node: int, nodes: int = 2) -> ClusterInfo:
    ready = {k: peers.ReadyRecord(k, f"i-{k}", f"10.9.96.{k + 3}", "enp6s0", 100.0 + k)
             for k in range(nodes)}
    return ClusterInfo(node, nodes, f"i-{node}", PrivateNic("enp6s0", "5a:01", ready[node].address),
                       {k: f"i-{k}" for k in range(nodes)}, ready, "10.9.96.3", 29400,
                       100.0 + nodes - 1)


def spec(node: int, **changes) -> ClusterSpec:
    return ClusterSpec(nodes=2, node_index=node, **{"nproc_per_node": 4, **changes})


def test_node_0_hosts_the_rendezvous():
    assert torchrun_argv(COMMAND, info(0), spec(0), "run-1") == [
        "/opt/venv/bin/python", "-m", "torch.distributed.run", "--nnodes=2",
        "--nproc-per-node=4", "--rdzv-backend=c10d", "--rdzv-endpoint=10.9.96.3:29400",
        "--rdzv-id=run-1", "--max-restarts=0", "--local-addr=10.9.96.3",
        "--rdzv-conf=is_host=1", "train.py", "--config", "a b.yaml"]


def test_node_1_joins_node_0s_rendezvous():
    argv = torchrun_argv(("python3", "-m", "pkg.train", "--x"), info(1), spec(1), "run-1")
    assert argv[:3] == ["python3", "-m", "torch.distributed.run"]
    assert "--rdzv-endpoint=10.9.96.3:29400" in argv and "--local-addr=10.9.96.4" in argv
    assert "--rdzv-conf=is_host=0" in argv and "--rdzv-conf=is_host=1" not in argv
    assert argv[-3:] == ["-m", "pkg.train", "--x"]


@pytest.mark.parametrize("node", [0, 1])
def test_the_environment_names_the_private_nic_and_the_roles(node):
    assert cluster_env(info(node)) == {
        "NCCL_SOCKET_IFNAME": "enp6s0", "GLOO_SOCKET_IFNAME": "enp6s0",
        "LAUNCHER_NODE_RANK": str(node), "LAUNCHER_NNODES": "2",
        "LAUNCHER_MASTER_ADDR": "10.9.96.3", "LAUNCHER_MASTER_PORT": "29400"}


@pytest.mark.parametrize("command", [("torchrun", "train.py"), ("bash", "-c", "python x.py"),
                                     ("/usr/bin/env", "python", "x.py")])
def test_a_command_without_a_python_in_front_is_refused(command):
    with pytest.raises(PhaseFailed) as failed:
        torchrun_argv(command, info(0), spec(0), "run-1")
    assert "must start with a python interpreter" in failed.value.reason
    assert "cluster launch 'env'" in failed.value.reason


@pytest.mark.parametrize("command", [("python",), ("python3", "-u", "train.py")])
def test_python_without_a_script_or_with_its_own_options_is_refused(command):
    with pytest.raises(PhaseFailed, match="needs a script"):
        torchrun_argv(command, info(0), spec(0), "run-1")


def test_the_stop_reserve_is_the_same_on_every_node():
    deadline = 100.0 + 10_000
    assert reserve_s(info(0), deadline, 1800, 0.15) == reserve_s(info(1), deadline, 1800, 0.15)
    assert reserve_s(info(0), deadline, 1800, 0.15) == pytest.approx(0.15 * (10_000 - 1))
    assert reserve_s(info(0), deadline, 60, 0.15) == 60


@pytest.mark.parametrize("node", [0, 1])
def test_torchrun_itself_accepts_the_command_line(node):
    """torch 2.13's own parser (pytorch/pytorch torch/distributed/run.py get_args_parser)
    reads every flag as meant."""
    need(UPS_PYTHON.is_file(), "needs .venv-ups with torch (make ups-env)")
    argv = torchrun_argv((str(UPS_PYTHON), "train.py", "--lr", "1"), info(node), spec(node),
                         "run-1")
    probe = ("import sys; from torch.distributed.run import get_args_parser; "
             "a = get_args_parser().parse_args(sys.argv[1:]); "
             "print(a.nnodes, a.nproc_per_node, a.rdzv_backend, a.rdzv_endpoint, a.rdzv_id, "
             "a.max_restarts, a.local_addr, a.rdzv_conf, a.training_script, "
             "a.training_script_args)")
    out = subprocess.run([str(UPS_PYTHON), "-c", probe, *argv[3:]], capture_output=True,
                         text=True, timeout=120, check=True).stdout.strip()
    assert out == (f"2 4 c10d 10.9.96.3:29400 run-1 0 10.9.96.{node + 3} "
                   f"is_host={1 if node == 0 else 0} train.py ['--lr', '1']")
