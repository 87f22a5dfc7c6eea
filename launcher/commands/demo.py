"""``launcher demo``: the offline demo (no account, nothing leaves 127.0.0.1), on an emulated
Vultr or, with ``--provider vast``, an emulated Vast.ai."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from launcher.commands import SUMMARIES, runcommon
from launcher.demo import DemoReport, run_demo
from launcher.demo.bed import demo_timing
from launcher.resources import example_dir, starter_configs
from launcher.terminal import escape, make_console


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "demo", help=SUMMARIES["demo"],
        description="Start an emulated Vultr whose instances run the real on-instance runner "
        "as local processes, and a local S3 server with a small data set; then run the "
        "example stage with the real commands (offers, run, status, logs, gc) and wait for "
        "the instance to train, upload and delete its volume and itself. Ends by counting "
        "what is left (0). With --provider vast: an emulated Vast.ai whose instances are "
        "local containers running the onstart, the same walk, each command typed with "
        "--provider vast, and the instance destroys itself. No account, no traffic off this "
        "machine.")
    parser.add_argument("--example-dir", type=Path, default=None, metavar="DIR",
                        help="the example stage's code (default: the example shipped with "
                        "the launcher, examples/tiny-train)")
    parser.add_argument("--config-dir", type=Path, default=None, metavar="DIR",
                        help="configuration directory with stages/example.yaml (default: "
                        "the configs shipped with the launcher)")
    parser.add_argument("--instant", action="store_true",
                        help="emulated resources change state at once (default: a few "
                        "seconds each, as on the cloud but shorter)")
    parser.add_argument("--json", action="store_true",
                        help="print only the report, as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    console = make_console(soft_wrap=True)
    show = (lambda line: None) if args.json else (lambda line: console.print(escape(line)))
    config_dir = args.config_dir or starter_configs()
    # --provider, else the provider: of the configs the demo runs with (the shipped: vultr)
    provider = runcommon.provider_name(argparse.Namespace(**{**vars(args),
                                                             "config_dir": config_dir}))
    report = run_demo(args.example_dir or example_dir(), config_dir,
                      timing=demo_timing(provider, instant=args.instant), show=show,
                      columns=max(console.width, 100), provider=provider)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        _summary(console, report)
    return 0 if report.left_over == 0 and report.state == "succeeded" else 1


def _summary(console: Console, report: DemoReport) -> None:
    typed = ", ".join(f"{c.argv[0]} {c.seconds:.1f}s" for c in report.commands)
    console.print(f"\ncommands: {typed}")
    console.print(f"run {report.run_id}: {report.state}; {len(report.artifacts)} objects in "
                  f"the bucket; {report.api_calls} API calls ({report.mutating_calls} "
                  f"mutating); {report.seconds:.1f}s")
    left = ", ".join(f"{n} {what}" for what, n in report.left.items())
    console.print(f"[bold]{report.left_over} resources left[/] ({left})")
