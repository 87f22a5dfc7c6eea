"""A 2-node run launched as a user launches it: ``launcher run --stage ddp --nodes 2`` against
the emulated Vultr whose machines are sandbox processes (the demo bed). The launcher makes the
region's VPC, two volumes and two tagged instances; each machine's real runner syncs, checks,
meets the other at the bucket barrier and trains the tiny DDP stage under real torchrun (gloo on
the loopback, CPU, torch from ``.venv-ups``); each uploads under ``nodes/<k>/`` and deletes its
volume and itself. ``status`` shows both nodes, ``gc`` finds nothing, nothing is left."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

import pytest
from support.demo import CONFIGS, FAKE_DEMO_KEYS, ROOT, needs_weed
from support.need import need

from launcher.demo import DemoBed
from launcher.demo.bed import BUCKET
from launcher.demo.session import DemoReport, Session

UPS_PYTHON = Path(os.environ.get("UPS_VENV", ROOT / ".venv-ups")) / "bin" / "python"
TRAINER = ROOT / "tests" / "sandbox" / "cluster" / "ddp_train.py"
STAGE = """name: ddp
description: Tiny DDP fit on two nodes under torchrun (gloo, CPU) for the cluster test.
command: [{python}, train.py, --steps, "5"]
data_prefix: datasets/example
max_hours: 1
cpu_only: true
volume:
  size_gb: 10
upload_dirs: [checkpoints, reports]
wandb:
  mode: offline
  tags: [ddp]
cluster:
  nodes: 1
  rdzv_port: {port}
  barrier_timeout_s: 300
  peer_timeout_s: 20
  reap_grace_s: 30
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_nothing_left(bed: DemoBed, timeout: float) -> dict[str, int]:
    """What is left once nothing is, or at the deadline (polled with backoff)."""
    deadline, delay = time.monotonic() + timeout, 0.2
    left = bed.left()
    while any(left.values()) and time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)
        left = bed.left()
    return left


@pytest.fixture
def ddp_bed(tmp_path):
    need(UPS_PYTHON.is_file(), f"{UPS_PYTHON} missing: run make ups-env (torch for the "
                               "2-node run)")
    need(os.geteuid() == 0, "a sandbox cluster needs root: each node trains as its own "
                            "system account")
    code, configs = tmp_path / "code", tmp_path / "configs"
    code.mkdir()
    shutil.copy(TRAINER, code / "train.py")
    shutil.copytree(CONFIGS, configs)
    (configs / "stages" / "ddp.yaml").write_text(
        STAGE.format(python=json.dumps(str(UPS_PYTHON)), port=free_port()), encoding="utf-8")
    with DemoBed.open(code, configs, FAKE_DEMO_KEYS) as bed:
        yield bed


@needs_weed
@pytest.mark.timeout(900)
def test_launcher_run_with_two_nodes_trains_under_torchrun_and_leaves_nothing(ddp_bed):
    bed: DemoBed = ddp_bed
    lines: list[str] = []
    session = Session(bed, DemoReport(run_id="ddp-two-nodes"), lines.append, 120)
    run_id = session.report.run_id
    out = session.launcher("run", "--stage", "ddp", "--nodes", "2", "--yes", "--run-id",
                           run_id, "--code-dir", str(bed.code_dir))
    assert "node 0" in out and "node 1" in out and "every node tears itself down" in out, out
    vpcs = [e for e in bed.emulator.events if e.method == "POST" and e.path == "/v2/vpcs"]
    creates = [e for e in bed.emulator.events
               if e.method == "POST" and e.path == "/v2/instances"]
    assert len(vpcs) == 1 and len(creates) == 2

    left = wait_nothing_left(bed, 600)
    assert not any(left.values()), (left, bed.machine_log[-20:])

    listing = bed.s3.listing(BUCKET, f"runs/{run_id}/")
    for k in (0, 1):
        status = json.loads(bed.s3.s5("cat", f"s3://{BUCKET}/runs/{run_id}/nodes/{k}/"
                                      "status.json").stdout)
        assert status["state"] == "succeeded" and status["node"] == k, status
        assert [p["name"] for p in status["phases"]][5:8] == ["health", "cluster", "train"]
    checkpoints = [key for key in listing if "/checkpoints/" in key]
    assert checkpoints and all(k.startswith(f"runs/{run_id}/nodes/0/") for k in checkpoints)
    report = json.loads(bed.s3.s5("cat", f"s3://{BUCKET}/runs/{run_id}/nodes/0/reports/"
                                  "report.json").stdout)
    assert report["world_size"] == 2, report
    assert not any(key.startswith(f"runs/{run_id}/status.json") for key in listing)

    status_out = session.launcher("status", run_id)
    assert "node 0" in status_out and "node 1" in status_out, status_out
    assert "Nothing to collect" in session.launcher("gc")
    print("\n".join(lines))  # shown by pytest -s, and on failure
    assert not [v for v in FAKE_DEMO_KEYS.values() if v in "\n".join(lines)]
