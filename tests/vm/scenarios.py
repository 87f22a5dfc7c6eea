"""The e2e scenarios: each drives one or two runs through the real ``launcher`` command line
on an :class:`~e2e_bed.E2eBed` and records what could be seen from outside the guest.

A run holds one of the bed's machine slots from ``launcher run`` until its VM has stopped
(two VMs at a time); everything read afterwards (the bucket, ``launcher status``/``logs``)
happens outside the slot. A scenario never raises: what went wrong is in
:attr:`RunRecord.error`, and the tests assert on the records.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from vmhost.agent import AgentError
from vmhost.backend import FINAL, VmState

from .e2e_bed import TRAIN, CliResult, E2eBed, wait_until

RUN_END_S = 1500.0  # launch -> the instance gone (TCG boots under load included)
VM_EXIT_S = 120.0
TRAIN_SEEN_S = 900.0
REUSE_LABEL = "launcher-cache-e2e"
KILL_RUNNER = ["/usr/bin/pkill", "-KILL", "-f", "runner.pyz supervise"]


@dataclass
class RunRecord:
    """One run as seen from outside: the launch's JSON, ids, the bucket's documents, the
    VM's end, the CLI outputs afterwards, and the scenario's own actions (``acts``)."""

    scenario: str
    run_id: str
    launch: CliResult | None = None
    launched: dict = field(default_factory=dict)
    launch_t: float = 0.0
    gone_t: float = 0.0
    vm: VmState | None = None
    status: dict | None = None
    manifest: dict | None = None
    probe: dict | None = None
    outputs: dict[str, int] = field(default_factory=dict)
    cli: dict[str, CliResult] = field(default_factory=dict)
    acts: dict[str, float] = field(default_factory=dict)
    act_results: dict[str, str] = field(default_factory=dict)
    holds_after: dict[str, list[str]] = field(default_factory=dict)
    error: str = ""

    @property
    def instance_id(self) -> str:
        return self.launched.get("instance", {}).get("id", "")

    @property
    def volume_id(self) -> str:
        return self.launched.get("volume", {}).get("id", "")


During = Callable[[E2eBed, RunRecord], None]


def drive(bed: E2eBed, slots: threading.Semaphore, record: RunRecord, stage: str,
          *flags: str, revocable: bool = False, during: During | None = None,
          config_dir: str = "") -> RunRecord:
    """Launch, let ``during`` act, wait for the instance to go and its VM to stop, then
    read the bucket and run ``status`` and ``logs``."""
    try:
        with slots:
            _launch_and_wait(bed, record, stage, flags, revocable, during, config_dir)
        _collect(bed, record)
    except Exception:  # a scenario reports, the tests judge
        record.error = record.error or traceback.format_exc(limit=5)
    return record


def _launch_and_wait(bed: E2eBed, record: RunRecord, stage: str, flags: tuple[str, ...],
                     revocable: bool, during: During | None, config_dir: str) -> None:
    record.launch_t = time.time()
    extra = ("--config-dir", config_dir) if config_dir else ()
    record.launch = bed.launcher("run", "--stage", stage, "--yes", "--json", "--run-id",
                                 record.run_id, "--code-dir", str(bed.code_dir), *extra,
                                 *flags, revocable=revocable)
    if record.launch.code != 0:
        record.error = f"launcher run exited {record.launch.code}"
        return
    record.launched = json.loads(record.launch.out)
    if during is not None:
        during(bed, record)
    iid = record.instance_id
    if not wait_until(lambda: iid not in bed.emulator.state.instances, RUN_END_S):
        record.error = f"instance {iid} still there after {RUN_END_S:g}s"
    record.gone_t = time.time()
    record.vm = bed.hypervisor.wait(iid, VM_EXIT_S)
    record.holds_after = bed.holds()


def _collect(bed: E2eBed, record: RunRecord) -> None:
    prefix = f"runs/{record.run_id}/"
    record.outputs = bed.listing(prefix)
    record.status = bed.bucket_json(prefix + "status.json")
    record.manifest = bed.bucket_json(prefix + "manifest.json")
    record.probe = bed.bucket_json(prefix + "reports/e2e-probe.json")
    for name, args in (("status", ("status", record.run_id)),
                       ("status_json", ("status", record.run_id, "--json")),
                       ("logs", ("logs", record.run_id)),
                       ("logs_runner", ("logs", record.run_id, "--runner"))):
        record.cli[name] = bed.launcher(*args, timeout=120.0)


def phase_seen(bed: E2eBed, record: RunRecord, phase: str, timeout: float) -> bool:
    """Wait until the run's status in the bucket (a heartbeat) shows ``phase`` running."""
    key = f"runs/{record.run_id}/status.json"

    def seen() -> bool:
        status = bed.bucket_json(key) or {}
        return status.get("phase") == phase or any(
            p.get("name") == phase for p in status.get("phases", []))

    return wait_until(seen, timeout, cap=5.0)


# -- the scenarios ------------------------------------------------------------------------

def happy(bed: E2eBed, slots: threading.Semaphore) -> list[RunRecord]:
    """The example stage (wrapped by the probe, which also tries the secrets file and the
    metadata address as the trainer) from launch to self-destruct."""
    return [drive(bed, slots, RunRecord("happy", "e2e-happy"), "e2e")]


def reuse(bed: E2eBed, slots: threading.Semaphore) -> list[RunRecord]:
    """Two runs on one kept volume: the second finds it formatted and fetches only the
    file added to the data set in between."""
    first = drive(bed, slots, RunRecord("reuse-first", "e2e-reuse-1"), "e2e-reuse",
                  "--reuse-volume", REUSE_LABEL)
    if first.error:
        return [first]
    bed.seed("datasets/reuse", {"part-99.csv": "x,y\n9.00,19.00\n9.01,19.02\n"})
    second = drive(bed, slots, RunRecord("reuse-second", "e2e-reuse-2"), "e2e-reuse",
                   "--reuse-volume", REUSE_LABEL)
    return [first, second]


def health_failure(bed: E2eBed, slots: threading.Semaphore) -> list[RunRecord]:
    """A volume slower than the stage demands (100 GB/s): the health phase fails the run."""
    return [drive(bed, slots, RunRecord("health-failure", "e2e-health"), "e2e",
                  config_dir=str(bed.strict_config_dir))]


def upload_failure(bed: E2eBed, slots: threading.Semaphore) -> list[RunRecord]:
    """The bucket refuses the instance's key from mid-training on (as B2 does for a deleted
    key): nothing more reaches the bucket, the volume is kept, the instance still goes."""
    def revoke(bed: E2eBed, record: RunRecord) -> None:
        if phase_seen(bed, record, "train", TRAIN_SEEN_S):
            bed.proxy.revoke()
            record.acts["key revoked"] = time.time()
        else:
            record.error = "training never showed in the bucket"

    command = ["python3", "e2e_probe.py", "--hold", "45", "--", *TRAIN]
    return [drive(bed, slots, RunRecord("upload-failure", "e2e-upload"), "e2e",
                  "--command", " ".join(command), revocable=True, during=revoke)]


def runner_killed(bed: E2eBed, slots: threading.Semaphore) -> list[RunRecord]:
    """The supervisor is SIGKILLed mid-training (as root, through the guest agent); the
    watchdog timer tears the run down once the deadline (9 minutes) has passed."""
    def kill(bed: E2eBed, record: RunRecord) -> None:
        if not phase_seen(bed, record, "train", TRAIN_SEEN_S):
            record.error = "training never showed in the bucket"
            return
        try:
            done = bed.hypervisor.guest_exec(record.instance_id, KILL_RUNNER, 120.0)
            record.act_results["kill"] = f"pkill exit {done.exit_code}"
        except AgentError as exc:
            record.error = f"cannot kill the runner: {exc}"
            return
        record.acts["runner killed"] = time.time()

    command = ["python3", "e2e_probe.py", "--hold", "3600", "--", *TRAIN]
    return [drive(bed, slots, RunRecord("runner-killed", "e2e-watchdog"), "e2e",
                  "--max-hours", "0.15", "--command", " ".join(command), during=kill)]


SCENARIOS: dict[str, Callable[[E2eBed, threading.Semaphore], list[RunRecord]]] = {
    # longest first: the watchdog waits for its deadline, reuse needs two boots in a row
    "runner-killed": runner_killed, "reuse": reuse, "happy": happy,
    "health-failure": health_failure, "upload-failure": upload_failure,
}


def vm_final(record: RunRecord) -> bool:
    return record.vm is not None and record.vm.state in FINAL
