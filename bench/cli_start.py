"""CLI start time: how long a `launcher` command takes as a fresh process, interpreter included.

Each repetition (``--repeat``, default 10) runs every command below once as a child process,
in an order that rotates from one repetition to the next (interleaved, so a slow moment of
the machine hits every command alike), after one untimed warm-up round; the wall time of
each child is measured from this process, start-up of the interpreter included:

    python -c pass        the floor: the interpreter alone
    launcher --help       the console script `pip install` made (``python -m launcher``
                          where there is none), the same entry point a user types
    launcher status       against the demo bed's emulated Vultr and local S3 server, after
                          one `launcher run --yes` of the example stage (machines do not boot:
                          the run has an instance, a volume and a code bundle, no status)
    launcher offers       ``--stage example`` against the same emulator

Every command gets the bed's environment (random keys, 127.0.0.1 endpoints, an empty .env).
Reported: median, min and max wall time, the ratio to the floor and the time above it; for
`launcher status`, one extra run with ``-X importtime`` shows where the time goes: the total
import time, the self time of the project's own modules, and the five other top-level
packages with the largest cumulative import time. Goal (issue): `launcher --help` ≤ 0.25 s
(median).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _launching import launch_example  # noqa: E402

from launcher.demo.bed import STAGE, DemoBed  # noqa: E402
from launcher.emulator import Timing  # noqa: E402

HELP_GOAL_S = 0.25
CHILD_TIMEOUT_S = 60.0
TOP_IMPORTS = 5


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]


@dataclass(frozen=True)
class CaseResult:
    name: str
    walls_s: tuple[float, ...]

    @property
    def median_s(self) -> float:
        return statistics.median(self.walls_s)


@dataclass(frozen=True)
class ImportCost:
    package: str
    cumulative_ms: float


@dataclass(frozen=True)
class ImportProfile:
    """One run's imports: their total, the self time of the project's own modules, and the
    other top-level packages costing most (each at its outermost import, with what it
    imports in turn, so nested ones overlap)."""

    total_ms: float
    own_self_ms: float
    top: tuple[ImportCost, ...]


def entry_point() -> tuple[str, ...]:
    """What the ``launcher`` console script runs: the script beside this interpreter, else
    ``python -m launcher``."""
    script = Path(sys.executable).parent / "launcher"
    if script.is_file() and os.access(script, os.X_OK):
        return (str(script),)
    return (sys.executable, "-m", "launcher")


def cases() -> list[Case]:
    launcher = entry_point()
    return [Case("python -c pass", (sys.executable, "-c", "pass")),
            Case("launcher --help", (*launcher, "--help")),
            Case("launcher status", (*launcher, "status")),
            Case("launcher offers", (*launcher, "offers", "--stage", STAGE))]


def run_child(case: Case, env: dict[str, str]) -> float:
    """One run of ``case``; its wall time (SystemExit when it fails)."""
    started = time.perf_counter()
    try:
        done = subprocess.run(case.argv, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              timeout=CHILD_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"`{case.name}` took over {CHILD_TIMEOUT_S:g}s") from None
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"`{case.name}` exited {done.returncode}:\n{done.stderr[-1500:]}")
    return wall


def measure(all_cases: list[Case], env: dict[str, str], repeat: int) -> list[CaseResult]:
    """A warm-up round, then ``repeat`` rounds, each starting one case later than the last."""
    for case in all_cases:
        run_child(case, env)
    walls: dict[str, list[float]] = {case.name: [] for case in all_cases}
    for index in range(repeat):
        shift = index % len(all_cases)
        for case in all_cases[shift:] + all_cases[:shift]:
            walls[case.name].append(run_child(case, env))
    return [CaseResult(case.name, tuple(walls[case.name])) for case in all_cases]


def import_profile(case: Case, env: dict[str, str]) -> ImportProfile:
    """Where one run of ``case`` spends its import time (``-X importtime``)."""
    done = subprocess.run(case.argv, env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=CHILD_TIMEOUT_S,
                          check=False)
    total = own = 0.0
    packages: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own_us, cumulative_us, name = line.removeprefix("import time:").split("|", 2)
        cumulative, package = int(cumulative_us) / 1000, name.strip().split(".")[0]
        if not name.startswith("  "):  # one space before the name: a top-level import
            total += cumulative
        if package == "launcher":
            own += int(own_us) / 1000
        else:
            packages[package] = max(packages.get(package, 0.0), cumulative)
    top = sorted(packages.items(), key=lambda item: item[1], reverse=True)[:TOP_IMPORTS]
    return ImportProfile(total, own, tuple(ImportCost(name, ms) for name, ms in top))


def report(results: list[CaseResult], imports: ImportProfile, repeat: int) -> dict:
    floor = results[0].median_s
    print(f"\nCLI start time: each command a fresh child process (interpreter start counted), "
          f"{repeat} interleaved rounds after a warm-up; status and offers against the "
          "emulator, status after one launch (no machine booted)")
    print(f"{'command':<18} {'median ms':>10} {'min ms':>8} {'max ms':>8} {'× floor':>8} "
          f"{'above floor ms':>15}")
    for r in results:
        print(f"{r.name:<18} {r.median_s * 1000:>10.1f} {min(r.walls_s) * 1000:>8.1f} "
              f"{max(r.walls_s) * 1000:>8.1f} {r.median_s / floor:>8.2f} "
              f"{(r.median_s - floor) * 1000:>15.1f}")
    print(f"launcher status, one run with -X importtime: {imports.total_ms:.0f} ms of imports; "
          f"the project's own modules {imports.own_self_ms:.0f} ms (self time); the largest "
          "other packages (cumulative):")
    for cost in imports.top:
        print(f"  {cost.package:<24} {cost.cumulative_ms:>8.1f} ms")
    help_s = next(r.median_s for r in results if r.name == "launcher --help")
    verdict = "meets" if help_s <= HELP_GOAL_S else "misses"
    print(f"verdict: {verdict} the goal (`launcher --help` ≤ {HELP_GOAL_S:g} s): "
          f"{help_s:.3f} s median, {help_s / floor:.1f}× the bare interpreter")
    return {"goal_help_s": HELP_GOAL_S, "meets": verdict == "meets",
            "results": [{**asdict(r), "median_s": r.median_s} for r in results],
            "status_imports": asdict(imports)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None, metavar="FILE")
    args = parser.parse_args()
    with DemoBed.open(ROOT / "examples" / "tiny-train", ROOT / "configs",
                      timing=Timing.instant(), machines=False) as bed:
        launch_example(bed, f"bench-cli-{os.getpid()}")  # so status has a run
        env = bed.env()
        all_cases = cases()
        results = measure(all_cases, env, max(1, args.repeat))
        imports = import_profile(all_cases[2], env)
    data = report(results, imports, max(1, args.repeat))
    if args.json:
        args.json.write_text(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
