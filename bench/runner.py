"""Runner overhead and idle billing: what the on-instance runner adds around training.

Goals (issue): boot → training start, less the data sync, ≤ 10 s ("runner overhead"), and
training exit → the instance's DELETE ≤ 30 s ("idle billing": the machine bills, nothing
trains).

Emulated (always measured): each repetition launches the example stage through the real CLI
entry point, in this process, against the Vultr emulator whose instances are local processes
running the real runner (the process sandbox: no VM, no boot, no GPU; a cloud boot is not part
of these figures), with a local S3 server for the bucket. Resources change state at once
(``Timing.instant``), so the launcher attaches the volume right after the create, as it does
long before a real VM has booted. The script waits (deadline, backoff) for the instance's own
``DELETE /v2/instances/<id>``, then reads the run's final ``status.json`` from the bucket.
Clocks: the emulator stamps its events with this process's ``time.monotonic()``, converted
to wall-clock time through one (wall, monotonic) pair read at start; the runner's phase
stamps (``started``/``ended``) are whole UTC seconds, so only each phase's ``seconds``
(monotonic, ms) is used, and two sub-second wall-clock marks are read from the machine's
state directory: the runner process's start (the ``/proc`` start time its ``supervisor.pid``
records, 10 ms ticks; else the file's mtime) and the training command's spawn
(``train.pid``'s mtime). Per repetition:

    create → runner   emulator's POST /v2/instances → the runner process starts
    runner → train    runner start → training command spawned
    data              the data phase (the sync; left out of the overhead)
    overhead          (runner → train) − data
    phases            harden + volume + code + health seconds (the rest of the overhead is
                      interpreter start, imports, host-key publishing and bookkeeping)
    idle billing      training exit (spawn + train phase seconds; the phase's set-up before
                      the spawn makes this exit a few ms late) → the instance's DELETE as
                      the emulator received it; of which the upload phase

VM (when a timing file of the end-to-end tests exists: ``$LAUNCHER_E2E_TIMINGS``, default
``.e2e-timings.json``, written by ``make e2e``): one row per scenario with boot → runner
(QEMU TCG boot and cloud-init, not judged), the runner overhead as the sum of the phases before
training except data, data, and idle billing; verdicts on the worst run, idle billing only for
runs whose training ended by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _launching import launch_example  # noqa: E402

from launcher.demo.bed import BUCKET, DemoBed  # noqa: E402
from launcher.emulator import Timing  # noqa: E402
from launcher.runner.statefiles import SUPERVISOR_PID, TRAIN_PID  # noqa: E402

OVERHEAD_GOAL_S = 10.0
IDLE_GOAL_S = 30.0
BEFORE_TRAIN = ("harden", "volume", "code", "health")  # data is left out: it is the sync
DELETE_DEADLINE_S = 60.0
EXIT_DEADLINE_S = 30.0
E2E_DEFAULT = ".e2e-timings.json"
KILLED = "runner killed"
T = TypeVar("T")


@dataclass(frozen=True)
class Anchor:
    """One (wall, monotonic) pair read together: turns emulator stamps into wall-clock."""

    wall0: float
    mono0: float

    @classmethod
    def now(cls) -> Anchor:
        return cls(time.time(), time.monotonic())

    def wall(self, monotonic_t: float) -> float:
        return self.wall0 + (monotonic_t - self.mono0)


@dataclass(frozen=True)
class RunnerSample:
    run: int
    state: str
    create_to_runner_s: float
    runner_to_train_s: float
    data_s: float
    phases_s: float
    train_s: float
    idle_s: float
    upload_s: float
    attach_after_create_s: float

    @property
    def overhead_s(self) -> float:
        return self.runner_to_train_s - self.data_s


@dataclass(frozen=True)
class VmRow:
    scenario: str
    training_exit: str
    boot_to_runner_s: float | None
    overhead_s: float | None
    data_s: float | None
    idle_s: float | None


def wait_until(check: Callable[[], T | None], deadline_s: float, what: str) -> T:
    """``check()`` until it returns something, with backoff, until the deadline."""
    deadline, delay = time.monotonic() + deadline_s, 0.05
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() + delay > deadline:
            raise SystemExit(f"{what}: not seen within {deadline_s:g}s")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def event_time(bed: DemoBed, since: int, method: str, suffix: str) -> float | None:
    """The emulator time of the first ``method`` call whose path ends with ``suffix``."""
    for event in bed.emulator.events[since:]:
        if event.method == method and event.path.endswith(suffix) and event.status is not None:
            return event.t
    return None


def process_start_wall(pid_file: Path) -> float:
    """When the process a pid file names started (wall clock): its ``/proc`` start time in
    clock ticks since boot, as recorded in the file; the file's mtime when it has none."""
    fields = pid_file.read_text(encoding="utf-8").split()
    if len(fields) < 2 or not hasattr(time, "CLOCK_BOOTTIME"):
        return pid_file.stat().st_mtime
    since_boot = int(fields[1]) / os.sysconf("SC_CLK_TCK")
    booted_at = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
    return booted_at + since_boot


def state_dir(machine_dir: Path) -> Path:
    """The runner's state directory on a sandbox machine (its run.json names it)."""
    spec = json.loads((machine_dir / "host/etc/launcher/run.json").read_text(encoding="utf-8"))
    return Path(spec["paths"]["state_dir"])


def final_status(bed: DemoBed, run_id: str) -> dict:
    done = bed.s3.s5("cat", f"s3://{BUCKET}/runs/{run_id}/status.json", check=False)
    try:
        return json.loads(done.stdout)
    except ValueError:
        raise SystemExit(f"no readable status.json for {run_id} in the bucket") from None


def measure_once(bed: DemoBed, index: int, anchor: Anchor) -> RunnerSample:
    since, known = len(bed.emulator.events), len(bed.hypervisor.machines())
    run_id = f"bench-runner-{os.getpid()}-{index}"
    launch_example(bed, run_id)
    machine = bed.hypervisor.machines()[known]
    iid = machine.instance_id
    deleted = wait_until(lambda: event_time(bed, since, "DELETE", f"/instances/{iid}"),
                         DELETE_DEADLINE_S, f"the instance's DELETE of {iid}")
    wait_until(lambda: bed.hypervisor.machine(iid).state in ("exited", "killed", "failed")
               or None, EXIT_DEADLINE_S, f"the runner of {iid} exiting")
    created = event_time(bed, since, "POST", "/v2/instances")
    attached = event_time(bed, since, "POST", "/attach")
    status = final_status(bed, run_id)
    phases = {p["name"]: float(p.get("seconds") or 0.0) for p in status.get("phases", [])}
    states = state_dir(machine.sandbox)
    if not (states / TRAIN_PID).is_file():
        raise SystemExit(f"run {run_id} never started training: {status.get('state')} "
                         f"({status.get('reason', '')})")
    runner_at = process_start_wall(states / SUPERVISOR_PID)
    spawned_at = (states / TRAIN_PID).stat().st_mtime
    trained_at = spawned_at + phases.get("train", 0.0)
    return RunnerSample(
        run=index, state=str(status.get("state", "?")),
        create_to_runner_s=runner_at - anchor.wall(created),
        runner_to_train_s=spawned_at - runner_at, data_s=phases.get("data", 0.0),
        phases_s=sum(phases.get(name, 0.0) for name in BEFORE_TRAIN),
        train_s=phases.get("train", 0.0), idle_s=anchor.wall(deleted) - trained_at,
        upload_s=phases.get("upload", 0.0), attach_after_create_s=attached - created)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report_emulated(samples: list[RunnerSample]) -> dict:
    print("\nrunner overhead and idle billing, EMULATED: the process sandbox (the real runner "
          "as a local process; no VM, no boot, no GPU), example stage")
    print(f"{'run':>4} {'state':>10} {'create→runner':>14} {'runner→train':>13} {'data':>6} "
          f"{'overhead':>9} {'phases':>7} {'train':>6} {'idle':>6} {'upload':>7}")
    for s in samples:
        print(f"{s.run:>4} {s.state:>10} {s.create_to_runner_s:>14.3f} "
              f"{s.runner_to_train_s:>13.3f} {s.data_s:>6.3f} {s.overhead_s:>9.3f} "
              f"{s.phases_s:>7.3f} {s.train_s:>6.3f} {s.idle_s:>6.3f} {s.upload_s:>7.3f}")
    med = {name: median([getattr(s, name) for s in samples]) for name in
           ("create_to_runner_s", "runner_to_train_s", "data_s", "overhead_s", "phases_s",
            "idle_s", "upload_s", "attach_after_create_s")}
    print(f"median (s): create→runner {med['create_to_runner_s']:.3f}, runner→train "
          f"{med['runner_to_train_s']:.3f}, data {med['data_s']:.3f}, overhead "
          f"{med['overhead_s']:.3f} (phases {med['phases_s']:.3f}), idle billing "
          f"{med['idle_s']:.3f} (upload {med['upload_s']:.3f})")
    print(f"  (the launcher attached the volume {med['attach_after_create_s']:.3f} s after the "
          "create; phase start/end stamps are whole seconds, so phase seconds are used)")
    ok = all(s.state == "succeeded" for s in samples)
    meets = ok and med["overhead_s"] <= OVERHEAD_GOAL_S and med["idle_s"] <= IDLE_GOAL_S
    print(f"verdict: {'meets' if meets else 'misses'} the goal, in emulation (runner overhead "
          f"≤ {OVERHEAD_GOAL_S:g} s and idle billing ≤ {IDLE_GOAL_S:g} s): overhead "
          f"{med['overhead_s']:.2f} s, idle billing {med['idle_s']:.2f} s"
          + ("" if ok else "; a run did not succeed"))
    return {"medians": med, "meets": meets,
            "samples": [{**asdict(s), "overhead_s": s.overhead_s} for s in samples]}


# -- the end-to-end tests' timing file (VMs) -------------------------------------------------

def vm_row(run: dict) -> VmRow:
    phases = run.get("phases_s") or {}
    before = [phases.get(name) for name in BEFORE_TRAIN]
    overhead = round(sum(before), 1) if all(v is not None for v in before) else None
    return VmRow(scenario=str(run.get("scenario", "?")),
                 training_exit=str(run.get("training_exit", "unknown")),
                 boot_to_runner_s=run.get("boot_to_runner_s"), overhead_s=overhead,
                 data_s=phases.get("data"), idle_s=run.get("idle_billing_s"))


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def worst(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def report_vm(path: Path, data: dict) -> dict:
    rows = [vm_row(run) for run in data.get("runs", [])]
    print(f"\nrunner overhead and idle billing, VM end to end ({path.name}: QEMU TCG virtual "
          "machines, real cloud-init; figures as the e2e tests recorded them)")
    print(f"{'scenario':<16} {'boot→runner':>12} {'overhead':>9} {'data':>6} {'idle':>7}  "
          "training exit")
    for r in rows:
        print(f"{r.scenario:<16} {_fmt(r.boot_to_runner_s):>12} {_fmt(r.overhead_s):>9} "
              f"{_fmt(r.data_s):>6} {_fmt(r.idle_s):>7}  {r.training_exit}")
    print("  boot→runner is a software-emulated (TCG) boot plus cloud-init: not a cloud "
          "boot, not judged; overhead = " + " + ".join(BEFORE_TRAIN) + " seconds (the file "
          "has no gaps between phases);\n  idle billing there starts at a whole-second "
          "phase end stamp, so it reads up to 1 s long")
    killed = [r.scenario for r in rows if r.training_exit == KILLED]
    if killed:
        print(f"  idle billing leaves out {', '.join(killed)}: its runner was killed, and the "
              "watchdog waits for the run's deadline before it tears down, by design")
    overhead = worst([r.overhead_s for r in rows])
    idle = worst([r.idle_s for r in rows if r.training_exit != KILLED])
    meets = (overhead is not None and overhead <= OVERHEAD_GOAL_S
             and idle is not None and idle <= IDLE_GOAL_S)
    print(f"verdict: {'meets' if meets else 'misses'} the goal, in VMs (runner overhead ≤ "
          f"{OVERHEAD_GOAL_S:g} s and idle billing ≤ {IDLE_GOAL_S:g} s, worst run): overhead "
          f"{_fmt(overhead)} s, idle billing {_fmt(idle)} s")
    return {"file": path.name, "worst_overhead_s": overhead, "worst_idle_s": idle,
            "meets": meets, "excluded_from_idle": killed, "rows": [asdict(r) for r in rows]}


def vm_figures() -> dict | None:
    path = Path(os.environ.get("LAUNCHER_E2E_TIMINGS") or ROOT / E2E_DEFAULT)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        print(f"\nVM end to end: no {path.name} (run `make e2e` to write it; "
              "LAUNCHER_E2E_TIMINGS names another file)")
        return None
    except ValueError as exc:
        print(f"\nVM end to end: {path.name} is not JSON ({exc}); run `make e2e` again")
        return None
    return report_vm(path, data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, metavar="FILE")
    args = parser.parse_args()
    anchor = Anchor.now()
    with DemoBed.open(ROOT / "examples" / "tiny-train", ROOT / "configs",
                      timing=Timing.instant(), machines=True) as bed:
        samples = [measure_once(bed, index, anchor) for index in range(1, args.repeat + 1)]
    data = {"emulated": report_emulated(samples), "vm": vm_figures()}
    if args.json:
        args.json.write_text(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
