"""Per-phase timings of the e2e runs, from the runs' manifests and what the host saw.

For each run: ``launch`` (the ``launcher run`` command), ``boot→metadata`` (QEMU start to the
first ``/v1.json``), ``boot→runner`` (QEMU start to the runner's start in the manifest), each
phase's seconds (the final status in the bucket, else the manifest), and ``idle billing``: the
end of training (the train phase's end; for a run without one, the last phase that ended or
the moment the scenario stopped it) to the instance DELETE the emulator received from the
guest. Written as JSON to ``$LAUNCHER_E2E_TIMINGS`` (default ``.e2e-timings.json``).
"""

from __future__ import annotations

import calendar
import json
import os
import re
import time
from pathlib import Path

from .scenarios import RunRecord

DEFAULT_FILE = ".e2e-timings.json"
FINAL_STATES = ("succeeded", "failed")
PHASES = ("harden", "volume", "code", "env", "data", "health", "train", "upload", "teardown")


def epoch(stamp: str) -> float | None:
    """``2026-01-02T03:04:05Z`` -> epoch seconds (None when empty or malformed)."""
    try:
        return float(calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")))
    except (TypeError, ValueError):
        return None


def guest_delete_t(calls, kind: str, resource_id: str) -> float | None:
    """When the emulator received the guest's DELETE of ``/<kind>/<id>``."""
    for call in calls:
        if call.method == "DELETE" and resource_id and call.path.endswith(f"/{kind}/"
                                                                         f"{resource_id}"):
            return call.t
    return None


def run_timings(record: RunRecord, calls) -> dict:
    """The timing row of one run (seconds, rounded; None where it cannot be known)."""
    final = (record.status or {}).get("state") in FINAL_STATES
    doc = (record.status if final else record.manifest) or record.status or {}
    phases = {p.get("name"): p for p in doc.get("phases", []) if isinstance(p, dict)}
    boot = record.vm.started_at if record.vm else 0.0
    runner = epoch((record.manifest or {}).get("started", "")) or console_stamp(
        record, "phase harden: start")
    served = record.vm.metadata_served if record.vm else ()
    delete_t = guest_delete_t(calls, "instances", record.instance_id)
    train_end, end_what = _training_exit(record, phases)
    row = {
        "scenario": record.scenario, "run_id": record.run_id,
        "launch_s": record.launch.seconds if record.launch else None,
        "boot_to_metadata_s": _r(served[0]) if served else None,
        "boot_to_runner_s": _r(runner - boot) if runner and boot else None,
        "phases_s": {name: _r(phases[name].get("seconds")) for name in PHASES
                     if phases.get(name, {}).get("ended")},
        "training_exit": end_what,
        "idle_billing_s": _r(delete_t - train_end) if delete_t and train_end else None,
        "volume_delete_after_launch_s": _since(guest_delete_t(calls, "blocks",
                                                              record.volume_id), record),
        "instance_delete_after_launch_s": _since(delete_t, record),
    }
    return row


def _training_exit(record: RunRecord, phases: dict) -> tuple[float | None, str]:
    if "runner killed" in record.acts:
        return record.acts["runner killed"], "runner killed"
    if "train" not in phases or (record.status or {}).get("state") not in FINAL_STATES:
        seen = console_stamp(record, "phase train: (ok|FAILED)")
        if seen:
            return seen, "train phase end (serial console)"
    for name in ("train", "health", "data", "code", "volume", "harden"):
        ended = epoch(phases.get(name, {}).get("ended", ""))
        if ended:
            return ended, f"{name} phase end"
    return None, "unknown"


def console_stamp(record: RunRecord, pattern: str) -> float | None:
    """The time stamp of the first runner line on the VM's serial console (where the guest's
    journal goes) matching ``pattern``: for a run whose last status never reached the bucket."""
    if record.vm is None or not record.vm.console.exists():
        return None
    found = re.search(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) " + pattern,
                      record.vm.console.read_text(errors="replace"))
    return epoch(found.group(1)) if found else None


def _since(t: float | None, record: RunRecord) -> float | None:
    return _r(t - record.launch_t) if t and record.launch_t else None


def _r(value) -> float | None:
    return round(float(value), 1) if isinstance(value, (int, float)) else None


def table(rows: list[dict]) -> list[str]:
    """The rows as text lines, one column per run."""
    if not rows:
        return []
    names = [r["run_id"] for r in rows]
    lines = [f"{'':<34}" + "".join(f"{n:>16}" for n in names)]

    def line(label: str, values) -> None:
        lines.append(f"{label:<34}" + "".join(f"{_fmt(v):>16}" for v in values))

    line("launcher run (s)", [r["launch_s"] for r in rows])
    line("boot -> first /v1.json (s)", [r["boot_to_metadata_s"] for r in rows])
    line("boot -> runner start (s)", [r["boot_to_runner_s"] for r in rows])
    for phase in PHASES:
        line(f"  phase {phase} (s)", [r["phases_s"].get(phase) for r in rows])
    line("launch -> volume DELETE (s)", [r["volume_delete_after_launch_s"] for r in rows])
    line("launch -> instance DELETE (s)", [r["instance_delete_after_launch_s"] for r in rows])
    line("idle billing: exit -> DELETE (s)", [r["idle_billing_s"] for r in rows])
    lines.append("  (training exit: " + "; ".join(f"{r['run_id']}: {r['training_exit']}"
                                                 for r in rows) + ")")
    return lines


def _fmt(value) -> str:
    return "-" if value is None else f"{value:g}"


def write(rows: list[dict], extra: dict, rootdir: Path) -> Path:
    """The rows (and ``extra``) as JSON at ``$LAUNCHER_E2E_TIMINGS`` or the default file."""
    target = Path(os.environ.get("LAUNCHER_E2E_TIMINGS") or rootdir / DEFAULT_FILE)
    target.write_text(json.dumps({"runs": rows, **extra}, indent=2) + "\n")
    return target
