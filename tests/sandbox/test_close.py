"""close() stops a runner that would otherwise go on for minutes, and its training group:
gracefully (SIGTERM: the runner stops training, uploads, tears down), or at once (SIGKILL:
the training command, in its own session, is stopped by the sandbox itself)."""

from __future__ import annotations

import os
import time

import pytest

from .conftest import Bed
from .test_full_run import pid_gone

CLOSE_DEADLINE_S = 25.0


@pytest.mark.parametrize("grace", [3.0, 0.0], ids=["sigterm", "sigkill"])
def test_close_stops_a_hanging_run_within_its_deadline(make_bed, grace):
    bed: Bed = make_bed(stop_grace_s=grace)
    run = bed.launch(command=("python3", "train.py", "--sleep", "600"))
    view = bed.hypervisor.wait(run.instance_id, 10, states=("running", "failed"))
    assert view.state == "running", bed.diagnostics(run.instance_id)
    train_pid_file = view.sandbox / "host/var/lib/launcher/train.pid"
    deadline = time.monotonic() + 40
    while not train_pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert train_pid_file.exists(), bed.diagnostics(run.instance_id)
    train_pid = int(train_pid_file.read_text().split()[0])
    assert not pid_gone(train_pid) and os.getpgid(train_pid) == train_pid

    started = time.monotonic()
    bed.hypervisor.close()
    took = time.monotonic() - started
    assert took < CLOSE_DEADLINE_S, took
    view = bed.hypervisor.machine(run.instance_id)
    assert view.state == "killed", bed.diagnostics(run.instance_id)
    assert pid_gone(view.pid) and pid_gone(train_pid)
    bed.hypervisor.close()  # idempotent
