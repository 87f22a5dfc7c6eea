"""``launcher teardown RUN``: delete a run's instance(s), and its volume(s) when that is safe."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console

from launcher.commands import SUMMARIES, runcommon
from launcher.commands.runcommon import (
    BUCKET_PURPOSE,
    account_for,
    add_config_dir,
    bucket_for,
    run_id,
)
from launcher.errors import ConfigError
from launcher.operate.cleanup import Action, Outcome, execute, plan_teardown
from launcher.operate.runs import Store, in_bucket, no_such_run
from launcher.providers.base import Provider
from launcher.tables import Col, FitTable, print_table
from launcher.terminal import escape, make_console


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "teardown", help=SUMMARIES["teardown"],
        description="Delete the instance(s) tagged with the run. Its volume(s) are deleted "
        "only when the bucket's status.json shows a verified upload (or with --force), and "
        "kept with --keep-volume. Idempotent: what is already gone counts as done. Anything "
        "that could not be deleted is printed with the commands that delete it.")
    parser.add_argument("run", type=run_id, metavar="RUN", help="the run id")
    parser.add_argument("--keep-volume", action="store_true",
                        help="keep the run's volume(s); they bill until deleted")
    parser.add_argument("--force", action="store_true",
                        help="delete the volume(s) even without a verified upload (their data "
                        "may exist nowhere else)")
    parser.add_argument("-y", "--yes", action="store_true",
                        help="do not ask (required when stdin is not a terminal)")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    add_config_dir(parser, BUCKET_PURPOSE)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.force and args.keep_volume:
        raise ConfigError("--force and --keep-volume contradict each other: pick one")
    account = account_for(args)
    bucket = bucket_for(account, args)
    console = make_console(stderr=args.json)
    with runcommon.open_provider(account, runcommon.provider_name(args)) as provider:
        plan = plan_teardown(provider, bucket, args.run, keep_volume=args.keep_volume,
                             force=args.force)
        if not plan.actions:
            return nothing_left(console, args, provider, bucket)
        print_table(console, plan_table(args.run, plan.actions))
        doomed = sum(a.delete for a in plan.actions)
        question = f"Delete {doomed} resource(s) of run {args.run}?"
        if not doomed or runcommon.confirm(question, args.yes):
            outcomes = execute(provider, plan.actions)
        else:
            console.print("Nothing deleted.")
            return 1
    return report(console, args, outcomes)


def nothing_left(console: Console, args: argparse.Namespace, provider: Provider,
                 bucket: Store) -> int:
    """No resource carries the run id: torn down when the bucket knows the run, a
    :class:`~launcher.operate.runs.NoSuchRun` (naming close run ids) when it holds nothing
    for it."""
    known = in_bucket(bucket, args.run)
    if known is False:
        raise no_such_run(args.run, provider, bucket,
                          f"the bucket has nothing under {bucket.address.run_url(args.run)}")
    if args.json:
        print(json.dumps({"run_id": args.run, "outcomes": [], "remaining": 0}))
        return 0
    console.print(f"Nothing of run {escape(args.run)} exists in {provider.title} any more: "
                  "it is torn "
                  "down." + ("" if known else " (The bucket could not be asked whether the "
                             "run ever existed.)"), soft_wrap=True)
    return 0


def plan_table(run: str, actions: list[Action]) -> FitTable:
    table = FitTable(f"teardown of run {escape(run)}",
                     [Col(name) for name in ("resource", "id", "label", "action", "why")])
    for a in actions:
        act = "[red]delete[/]" if a.delete else "[yellow]keep[/]"
        table.add_row(a.kind, escape(a.id), escape(a.label), act, escape(a.reason))
    return table


def report(console: Console, args: argparse.Namespace, outcomes: list[Outcome]) -> int:
    """Print what happened; exit 1 when something the user did not ask to keep remains."""
    unwanted = [o for o in outcomes if o.remains
                and not (args.keep_volume and o.action.kind == "volume")]
    if args.json:
        print(json.dumps({"run_id": args.run, "outcomes": [o.as_dict() for o in outcomes],
                          "remaining": sum(o.remains for o in outcomes)}, indent=2))
    else:
        show_outcomes(console, outcomes)
    return 1 if unwanted else 0


def show_outcomes(console: Console, outcomes: list[Outcome]) -> None:
    for o in outcomes:
        if not o.remains:
            console.print(f"{o.action.kind} {escape(o.action.id)} ({escape(o.action.label)}): "
                          f"{o.result}")
    remains = [o for o in outcomes if o.remains]
    if not remains:
        return
    console.print(f"[bold red]STILL EXISTS ({len(remains)}), billing until deleted:[/]")
    for o in remains:
        console.print(f"  {o.action.kind} {escape(o.action.id)} ({escape(o.action.label)}) — "
                      f"{o.result}: {escape(o.detail)}", soft_wrap=True)
        for command in o.commands:
            console.print(f"    {escape(command)}", soft_wrap=True)
    sys.stdout.flush()
