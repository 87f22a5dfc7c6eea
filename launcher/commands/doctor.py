"""``launcher doctor``: check the key, its permissions, the bucket, the snapshot, GPU stock
and s5cmd, each with a hint; exit 0 only when nothing failed."""

from __future__ import annotations

import argparse
import json
import os

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from launcher.commands import SUMMARIES, runcommon
from launcher.commands.runcommon import account_for, add_config_dir, config_dir
from launcher.doctor import FAIL, OK, SKIP, WARN, Check, passed, run_checks

MARKS = {OK: "[green]✔[/]", WARN: "[yellow]![/]", FAIL: "[red]✘[/]", SKIP: "[dim]–[/]"}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "doctor", help=SUMMARIES["doctor"],
        description="Check that this machine can launch and watch runs: the Vultr key is "
        "accepted and not more powerful than needed, the bucket answers with the B2 key, the "
        "stage's snapshot exists, a fitting GPU is in stock, s5cmd is installed. Exit 0 only "
        "when no check failed (a warning does not fail).")
    parser.add_argument("--stage", default=None,
                        help="check for this stage (default: configs/launcher.yaml's defaults)")
    add_config_dir(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    account = account_for(args)
    with runcommon.vultr_client(account) as client:
        checks = run_checks(account, client, config_dir=config_dir(args),
                            stage_name=args.stage, environ=os.environ)
    ok = passed(checks)
    if args.json:
        print(json.dumps({"ok": ok, "checks": [c.as_dict() for c in checks]}, indent=2))
    else:
        Console(highlight=False).print(table(checks))
    return 0 if ok else 1


def table(checks: list[Check]) -> Table:
    out = Table(title="launcher doctor")
    for name in ("", "check", "result", "hint"):
        out.add_column(name)
    for c in checks:
        out.add_row(MARKS[c.status], c.name, escape(c.detail), escape(c.hint))
    return out
