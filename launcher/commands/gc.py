"""``launcher gc``: find what ended or expired runs left behind; delete it with ``--yes``."""

from __future__ import annotations

import argparse
import json
from functools import cache

from launcher.commands import SUMMARIES, runcommon
from launcher.commands.runcommon import BUCKET_PURPOSE, account_for, add_config_dir, bucket_for
from launcher.commands.teardown import show_outcomes
from launcher.errors import LauncherError
from launcher.operate.access import stage_for
from launcher.operate.cleanup import Action, execute, plan_gc
from launcher.operate.keptvolumes import how_to_delete, kept_table, kept_volumes
from launcher.operate.nodegc import ClusterTimes, StageTimes
from launcher.tables import Col, FitTable, print_table
from launcher.terminal import escape, make_console


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "gc", help=SUMMARIES["gc"],
        description="Collect every launcher-tagged instance whose run is final in the bucket "
        "(succeeded, failed, torn-down) or whose expires: tag has passed, and every run volume "
        "(<run>-cache) whose run has no instance left. An N-node run goes node by node: a "
        "node's instance also when its runner stopped (its liveness record older than the "
        "stage's cluster.peer_timeout_s) or, with no liveness record, when another node "
        "failed longer than cluster.reap_grace_s ago; a node's volume by that node's upload. "
        "Volumes without a verified "
        "upload are kept unless --force; reusable volumes (launcher-cache-*) and anything "
        "without the launcher's tag are never touched (the reusable ones are listed with "
        "their monthly cost). Without --yes nothing is deleted.")
    parser.add_argument("-y", "--yes", action="store_true", help="delete what is listed")
    parser.add_argument("--force", action="store_true",
                        help="also delete orphan volumes without a verified upload")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    add_config_dir(parser, BUCKET_PURPOSE)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    account = account_for(args)
    bucket = bucket_for(account, args)
    console = make_console(stderr=args.json)
    with runcommon.open_provider(account, runcommon.provider_name(args)) as provider:
        actions = plan_gc(provider, bucket, force=args.force, stage_times=stage_times(args))
        kept = kept_volumes(provider)
        outcomes = execute(provider, actions) if args.yes else []
    if args.json:
        print(json.dumps({"actions": [vars_of(a) for a in actions], "deleted": args.yes,
                          "outcomes": [o.as_dict() for o in outcomes],
                          "kept_volumes": [v.as_dict(account.vultr_api_url) for v in kept]},
                         indent=2))
    elif not actions:
        console.print("Nothing to collect: no launcher instance has ended or expired, and no "
                      "run volume is without its instance.")
    else:
        print_table(console, gc_table(actions, provider.title))
        if args.yes:
            show_outcomes(console, outcomes)
        else:
            doomed = sum(a.delete for a in actions)
            console.print(f"Nothing deleted: `launcher gc --yes` deletes the {doomed} "
                          "marked delete.")
    if kept and not args.json:
        print_table(console, kept_table(kept))
        console.print(escape(how_to_delete(account.vultr_api_url)), soft_wrap=True)
    return 1 if any(o.result == "failed" for o in outcomes) else 0


def stage_times(args: argparse.Namespace) -> StageTimes:
    """A stage's cluster times from the configuration folder; None for a stage it does not
    hold (gc then says it used the defaults)."""
    folder = runcommon.config_dir(args)

    @cache
    def lookup(name: str) -> ClusterTimes | None:
        try:
            cluster = stage_for(folder, name).cluster
        except (LauncherError, OSError):
            return None
        return ClusterTimes(cluster.peer_timeout_s, cluster.reap_grace_s,
                            f"stage {name}'s setting")

    return lookup


def vars_of(action: Action) -> dict:
    return {"kind": action.kind, "id": action.id, "label": action.label,
            "run_id": action.run_id, "delete": action.delete, "reason": action.reason}


def gc_table(actions: list[Action], cloud: str = "Vultr") -> FitTable:
    table = FitTable(f"garbage (from {cloud}'s tags or labels and the bucket)",
                     [Col(name) for name in ("resource", "id", "label", "run", "action",
                                             "why")])
    for a in actions:
        act = "[red]delete[/]" if a.delete else "[yellow]keep[/]"
        table.add_row(a.kind, escape(a.id), escape(a.label), escape(a.run_id), act,
                      escape(a.reason))
    return table
