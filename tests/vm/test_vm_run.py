"""A whole run in a QEMU virtual machine: the emulator creates an instance carrying the
rendered document, cloud-init's real Vultr datasource fetches it from the instance's metadata
endpoint, the volume is hot-plugged with its ``mount_id`` as serial, and the real runner
mounts, syncs, trains, uploads to SeaweedFS and deletes its volume and then its instance
through the emulator. Every assertion is a signal from outside the guest."""

from __future__ import annotations

import json
import time

import pytest

from .conftest import RUN_ID, SECRET_VALUES, VmBed

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]
BOOT_TO_METADATA_S = 300
RUN_S = 1200


def test_a_document_boots_in_a_vm_and_deletes_itself(make_vm_bed, tmp_path):
    bed: VmBed = make_vm_bed()
    run = bed.launch()
    view = bed.wait_metadata_served(run.instance_id, BOOT_TO_METADATA_S)
    assert view.metadata_served, bed.diagnostics(run.instance_id)
    bed.client.attach_block(run.block_id, run.instance_id, live=True)
    attached_t = time.time()

    assert bed.wait_gone(run, RUN_S), bed.diagnostics(run.instance_id)
    view = bed.hypervisor.wait(run.instance_id, 60)
    assert view.state == "stopped", bed.diagnostics(run.instance_id)

    calls = [(method, path) for _, method, path, _ in bed.guest_calls]
    assert ("DELETE", f"/v2/blocks/{run.block_id}") in calls, bed.diagnostics(run.instance_id)
    assert ("DELETE", f"/v2/instances/{run.instance_id}") in calls
    assert calls.index(("DELETE", f"/v2/blocks/{run.block_id}")) < \
        calls.index(("DELETE", f"/v2/instances/{run.instance_id}"))

    prefix = f"runs/{RUN_ID}/"
    remote = bed.remote(prefix)
    for key in ("status.json", "manifest.json", "logs/runner.log", "logs/train.log",
                "checkpoints/step-3/model.bin", "reports/report.json"):
        assert f"{prefix}{key}" in remote, sorted(remote)
    status = json.loads(bed.fetch(f"{prefix}status.json", tmp_path))
    assert status["state"] == "succeeded", status
    assert status["left_behind"] == []
    assert not any(note.startswith("TEST HOST:") for note in status["notes"])  # a real machine
    manifest = json.loads(bed.fetch(f"{prefix}manifest.json", tmp_path))
    assert manifest["exit_code"] == 0 and manifest["dataset"]["files"] == 2
    report = json.loads(bed.fetch(f"{prefix}reports/report.json", tmp_path))
    assert report["files"] == ["a.txt", "nested/b.bin"]
    runner_log = bed.fetch(f"{prefix}logs/runner.log", tmp_path).decode()
    assert run.mount_id in runner_log, runner_log[-2000:]

    console = view.console.read_text(errors="replace")
    assert "DataSourceVultr" in console, bed.diagnostics(run.instance_id)
    assert not any(value in console for value in SECRET_VALUES)
    _report_timings(run, view, attached_t, bed, status)


def _report_timings(run, view, attached_t, bed: VmBed, status: dict) -> None:
    """Print when each outside-visible event happened (pytest -s shows it)."""
    started = run.created_t
    deletes = [t for t, method, path, _ in bed.guest_calls
               if method == "DELETE" and path.endswith(run.instance_id)]
    rows = [("first /v1.json served (s after QEMU start)", view.metadata_served[0]),
            ("volume hot-plugged (s after instance create)", attached_t - started),
            ("instance DELETE by the guest (s after create)", (deletes or [started])[0] - started)]
    rows += [(f"phase {p.get('name')} (s)", p.get("seconds") or p.get("duration_s"))
             for p in status.get("phases", []) if isinstance(p, dict) and p.get("seconds")]
    print("\nVM run timings:\n" + "\n".join(f"  {name:<48} {value}" for name, value in rows))
    print("VM timeline:\n" + "\n".join(f"  +{t:>6}s {what}" for t, what in view.timeline))
