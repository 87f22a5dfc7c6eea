"""``launcher doctor``: check the key, its permissions, the instance's key, the bucket, the
snapshot, GPU stock and s5cmd, each with a hint; ``--prove-self-destruct`` also creates and
deletes a 40 GB volume with the instance's key. Exit 0 only when nothing failed."""

from __future__ import annotations

import argparse
import json
import os

from launcher.commands import SUMMARIES, runcommon
from launcher.commands.runcommon import account_for, add_config_dir, config_dir
from launcher.config import Account
from launcher.errors import ConfigError
from launcher.operate.doctor import FAIL, OK, SKIP, WARN, Check, ProbeRequest, passed, run_checks
from launcher.operate.doctor_vast import run_vast_checks
from launcher.tables import Col, FitTable, print_table
from launcher.terminal import escape, make_console

MARKS = {OK: "[green]✔[/]", WARN: "[yellow]![/]", FAIL: "[red]✘[/]", SKIP: "[dim]–[/]"}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "doctor", help=SUMMARIES["doctor"],
        description="Check that this machine can launch and watch runs (with --provider "
        "vast: the Vast key and its credit, GPU stock, the bucket, s5cmd): the Vultr key is "
        "accepted and not more powerful than needed, the key the instance deletes itself with "
        "(VULTR_SELF_DESTRUCT_KEY, else VULTR_KEY) answers the reads its teardown makes, the "
        "bucket answers with the B2 key, the stage's snapshot exists, a fitting GPU is in "
        "stock, s5cmd is installed. Exit 0 only when no check failed (a warning does not "
        "fail).")
    parser.add_argument("--stage", default=None,
                        help="check for this stage (default: configs/launcher.yaml's defaults)")
    add_config_dir(parser)
    parser.add_argument("--prove-self-destruct", action="store_true",
                        help="with the instance's key, create the smallest block volume (40 GB, "
                        "cheapest type; under one cent), delete it and see it gone; whatever "
                        "fails is deleted with VULTR_KEY, and anything left is named")
    parser.add_argument("--region", default=None, metavar="R",
                        help="where --prove-self-destruct creates its volume (default: the "
                        "stage's first region with block storage)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.region and not args.prove_self_destruct:
        raise ConfigError("--region only applies to --prove-self-destruct: add it, or drop "
                          "--region")
    account = account_for(args)
    if runcommon.provider_name(args) == "vast":
        if args.prove_self_destruct:
            raise ConfigError("--prove-self-destruct proves a Vultr key; on Vast.ai each "
                              "instance gets its own key, so there is nothing to prove")
        checks = vast_checks(args, account)
    else:
        with runcommon.vultr_client(account) as client:
            probe = ProbeRequest(args.region) if args.prove_self_destruct else None
            checks = run_checks(account, client, config_dir=config_dir(args),
                                stage_name=args.stage, environ=os.environ, probe=probe)
    ok = passed(checks)
    if args.json:
        print(json.dumps({"ok": ok, "checks": [c.as_dict() for c in checks]}, indent=2))
    else:
        print_table(make_console(), table(checks))
    return 0 if ok else 1


def table(checks: list[Check]) -> FitTable:
    out = FitTable("launcher doctor", [Col(name) for name in ("", "check", "result", "hint")])
    for c in checks:
        out.add_row(MARKS[c.status], c.name, escape(c.detail), escape(c.hint))
    return out


def vast_checks(args: argparse.Namespace, account: Account) -> list[Check]:
    """Without VAST_API_KEY the key's check says so, and the rest of this machine's still run."""
    options = {"config_dir": config_dir(args), "stage_name": args.stage, "environ": os.environ}
    if not account.vast_api_key:
        return run_vast_checks(account, None, **options)
    with runcommon.open_provider(account, "vast") as provider:
        return run_vast_checks(account, provider, **options)  # type: ignore[arg-type]
