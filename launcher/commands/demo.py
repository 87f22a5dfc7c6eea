"""``launcher demo``: the offline demo against an in-process emulator (no account needed)."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.markup import escape

from launcher.demo import Step, run_demo
from launcher.emulator import Timing


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "demo",
        help="walk a launch and teardown against an emulated Vultr on 127.0.0.1",
        description="Start a Vultr emulator in this process and walk a session through it: "
        "GPU plans with stock (sjc, sea, lax), the baked snapshot, a 1 TB volume, an instance, "
        "a live attach, then delete everything. No account, no traffic off this machine.",
    )
    parser.add_argument("--instant", action="store_true",
                        help="resources change state at once (default: a few seconds each)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    console = Console()
    timing = Timing.instant() if args.instant else Timing.realistic()
    on_step = (lambda step: None) if args.json else (lambda step: _show(console, step))
    report = run_demo(timing=timing, on_step=on_step)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        console.print(f"{report.api_calls} API calls ({report.mutating_calls} mutating); "
                      f"{report.left_over} resources left behind")
    return 0 if report.left_over == 0 else 1


def _show(console: Console, step: Step) -> None:
    console.print(f"[bold]{step.name:>9}[/] {escape(step.detail)} [dim]({step.seconds:.1f}s)[/]")
