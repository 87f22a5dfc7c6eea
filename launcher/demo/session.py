"""The offline demo: a real run of the example stage, typed as a user would type it.

On a :class:`~launcher.demo.bed.DemoBed` it runs the ``launcher`` commands as child
processes with the bed's environment — ``offers``, ``run --yes``, ``status``, then waits (with
a deadline) for the instance to delete its volume and itself (Vast: to destroy itself), then
``status``, ``logs`` and ``gc`` — and checks the outcome from the outside: the run's
``status.json`` and artifacts in the bucket, the mutating calls the instance made, and what
still exists. The report's ``left_over`` must be 0; any command failing, or the run not
ending in time, raises :class:`DemoError` after everything was stopped. The walk is the same
for every provider; with ``vast`` each command is typed with ``--provider vast``.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from launcher.demo.bed import BUCKET, STAGE, DemoBed, DemoKeys
from launcher.demo.vast import is_vast_launch
from launcher.emulator import Timing
from launcher.emulator.events import Event
from launcher.emulator.vast import VastTiming
from launcher.errors import LauncherError

COMMAND_TIMEOUT_S = 120.0
SELF_DESTRUCT_DEADLINE_S = 90.0


class DemoError(LauncherError):
    """The demo did not go as a healthy run goes; the message says which step and why."""


@dataclass(frozen=True)
class Ending:
    """How a provider's run ends: what the instance does to itself, how the teardown phase
    reads once it is done, and which API call is the launch's last (what follows is the
    instance's own doing)."""

    doing: str
    done: str
    launch_end: Callable[[Event], bool]


def _is_attach(event: Event) -> bool:
    return event.mutating and event.path.endswith("/attach")


ENDINGS = {"vultr": Ending("delete its volume and itself", "instance and volume deleted",
                           _is_attach),
           "vast": Ending("destroy itself", "instance destroyed", is_vast_launch)}


@dataclass(frozen=True)
class CommandRecord:
    """One ``launcher`` command the demo typed: its arguments, exit code and wall time."""

    argv: tuple[str, ...]
    exit_code: int
    seconds: float


@dataclass
class DemoReport:
    """What the demo saw. ``left_over`` counts instances, volumes and machines still there."""

    run_id: str = ""
    provider: str = "vultr"
    state: str = ""
    phases: list[str] = field(default_factory=list)
    artifacts: dict[str, int] = field(default_factory=dict)
    self_destruct: list[str] = field(default_factory=list)
    commands: list[CommandRecord] = field(default_factory=list)
    api_calls: int = 0
    mutating_calls: int = 0
    left: dict[str, int] = field(default_factory=dict)
    left_over: int = -1
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


class Session:
    """Types commands into the bed and shows each one with its output."""

    def __init__(self, bed: DemoBed, report: DemoReport, show: Callable[[str], None],
                 columns: int):
        self.bed, self.report, self.show = bed, report, show
        self.ending = ENDINGS[bed.provider]
        self.flags = ("--provider", bed.provider) if bed.provider != "vultr" else ()
        # Progress (stderr) and results (stdout) interleave as on a terminal of this width.
        self.env = {**bed.env(), "PYTHONUNBUFFERED": "1", "COLUMNS": str(columns)}

    def launcher(self, *args: str, expect: tuple[int, ...] = (0,)) -> str:
        """Run ``launcher ARGS`` as a child process; its output (DemoError when it fails).
        The provider flag, if any, is typed after the command's name."""
        args = (args[0], *self.flags, *args[1:])
        self.show(f"\n$ launcher {' '.join(args)}")
        started = time.monotonic()
        try:
            done = subprocess.run([sys.executable, "-m", "launcher", *args], env=self.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  timeout=COMMAND_TIMEOUT_S, stdin=subprocess.DEVNULL,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise DemoError(f"`launcher {args[0]}` took over {COMMAND_TIMEOUT_S:g}s") from None
        seconds = round(time.monotonic() - started, 2)
        self.report.commands.append(CommandRecord(tuple(args), done.returncode, seconds))
        if done.stdout.strip():
            self.show(done.stdout.rstrip("\n"))
        if done.returncode not in expect:
            raise DemoError(f"`launcher {args[0]}` exited {done.returncode}; its output is "
                            "shown above")
        return done.stdout


def run_demo(example_dir: Path, config_dir: Path, *, keys: DemoKeys | None = None,
             timing: Timing | VastTiming | None = None, columns: int = 120,
             show: Callable[[str], None] = lambda line: None,
             provider: str = "vultr") -> DemoReport:
    """Start the bed, walk one run of the example stage through it, stop everything."""
    started = time.monotonic()
    with DemoBed.open(example_dir, config_dir, keys, timing, provider=provider) as bed:
        assert bed.emulator is not None and bed.s3 is not None
        show(f"emulated {bed.title} API: {bed.emulator.url}   S3 bucket: s3://{BUCKET} at "
             f"{bed.s3.endpoint}   (nothing leaves 127.0.0.1)")
        report = walk(bed, show=show, columns=columns)
    report.seconds = round(time.monotonic() - started, 1)
    return report


def walk(bed: DemoBed, *, show: Callable[[str], None] = lambda line: None,
         columns: int = 120) -> DemoReport:
    """Walk one run of the example stage (a fresh ``demo-`` id) through ``bed``, an open bed
    that is left open: the commands, the wait for the instance's end, what it left (the API
    calls counted are all the bed's emulator answered). Raises :class:`DemoError` when a
    step fails. ``report.seconds`` is the walk's time."""
    assert bed.emulator is not None
    report = DemoReport(run_id=f"demo-{secrets.token_hex(3)}", provider=bed.provider)
    started = time.monotonic()
    try:
        _walk(Session(bed, report, show, columns))
    finally:
        report.api_calls = len(bed.emulator.events)
        report.mutating_calls = len(bed.emulator.mutations())
        report.left = bed.left()
        report.left_over = sum(report.left.values())
        report.seconds = round(time.monotonic() - started, 1)
    return report


def _walk(s: Session) -> None:
    run_id, report = s.report.run_id, s.report
    s.launcher("offers", "--stage", STAGE)
    launched_at = len(s.bed.emulator.events)
    s.launcher("run", "--stage", STAGE, "--yes", "--run-id", run_id,
               "--code-dir", str(s.bed.code_dir))
    s.launcher("status", run_id)
    _wait_self_destruct(s, launched_at)
    s.launcher("status", run_id)
    s.launcher("logs", run_id)
    status = _status_json(s.bed, run_id)
    report.state = status.get("state", "")
    report.phases = [_phase_line(p, s.ending.done) for p in status.get("phases", [])]
    report.artifacts = s.bed.s3.listing(BUCKET, f"runs/{run_id}/")
    s.show(f"\nin s3://{BUCKET}/runs/{run_id}/:")
    for key, size in sorted(report.artifacts.items()):
        s.show(f"  {key.removeprefix(f'runs/{run_id}/'):<40} {size:>9,} B")
    s.launcher("gc")


def _phase_line(phase: dict, done: str) -> str:
    """``name ok|failed|unfinished seconds``. The final status.json is uploaded during
    teardown, so its teardown phase has no verdict: the demo has waited until the instance
    (and its volume) were gone, which is that phase's success (seen from the API)."""
    name, ok = phase.get("name"), phase.get("ok")
    if ok is None and name == "teardown":
        return f"{name} ok {phase.get('seconds') or 0}s ({done})"
    verdict = {True: "ok", False: "failed"}.get(ok, "unfinished")
    return f"{name} {verdict} {phase.get('seconds', 0)}s"


def _wait_self_destruct(s: Session, since: int) -> None:
    """Until nothing is left: no instance, no volume (the runner deletes both), no machine."""
    s.show(f"\n… waiting for the instance to train, upload and {s.ending.doing}")
    deadline, delay = time.monotonic() + SELF_DESTRUCT_DEADLINE_S, 0.1
    while True:
        left = s.bed.left()
        if not any(left.values()):
            break
        if time.monotonic() + delay > deadline:
            raise DemoError(f"the instance did not {s.ending.doing} within "
                            f"{SELF_DESTRUCT_DEADLINE_S:g}s ({left}); machine log: "
                            f"{s.bed.machine_log[-5:]}")
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)
    events = s.bed.emulator.events[since:]
    launch_end = _last_launcher_mutation(events, s.ending.launch_end)
    s.report.self_destruct = [f"{e.method} {e.path} → {e.status}"
                              for e in events[launch_end:] if e.mutating]
    s.show("the instance's own calls to the API after launch:")
    for line in s.report.self_destruct:
        s.show(f"  {line}")


def _last_launcher_mutation(events: list[Event], is_last: Callable[[Event], bool]) -> int:
    """Index just after the launch's last mutating call (Vultr: the attach; Vast: the
    create): what follows is the instance's own doing (``status`` only reads)."""
    for index in range(len(events) - 1, -1, -1):
        if is_last(events[index]):
            return index + 1
    return 0


def _status_json(bed: DemoBed, run_id: str) -> dict:
    done = bed.s3.s5("cat", f"s3://{BUCKET}/runs/{run_id}/status.json", check=False)
    try:
        return json.loads(done.stdout)
    except ValueError:
        return {}
