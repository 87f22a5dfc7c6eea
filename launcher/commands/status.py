"""``launcher status [RUN]``: every run, or one in detail, from Vultr's tags and the bucket."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from launcher.commands import SUMMARIES, runcommon
from launcher.commands.runcommon import (
    BUCKET_PURPOSE,
    account_for,
    add_config_dir,
    bucket_for,
    dollars,
    duration,
    run_id,
)
from launcher.providers.vultr import VultrProvider
from launcher.runs import NOT_UPLOADED, RunView, list_views, view

ESTIMATE = ("$ so far is an estimate: list price per hour × hours since each instance and "
            "volume was created")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "status", help=SUMMARIES["status"],
        description="Show the launcher's runs as Vultr (tagged instances, run volumes) and "
        "the bucket (runs/<id>/status.json) see them; no local state, so it works from any "
        "machine. A run whose instances and volumes are all gone is not listed, but "
        "`launcher status RUN` still shows it from the bucket. With RUN: its phases, notes "
        "and anything left behind.")
    parser.add_argument("run", nargs="?", type=run_id, metavar="RUN", help="one run id")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    add_config_dir(parser, BUCKET_PURPOSE)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    account = account_for(args)
    bucket = bucket_for(account, args)
    with runcommon.vultr_client(account) as client:
        provider = VultrProvider(client)
        if args.run:
            one = view(args.run, provider, bucket, client)
            views = [one]
        else:
            views = list_views(provider, bucket, client)
    if args.json:
        data = views[0].as_dict() if args.run else [v.as_dict() for v in views]
        print(json.dumps(data, indent=2))
        return 0
    console = Console(highlight=False)
    if args.run:
        show_one(console, views[0])
    else:
        show_all(console, views)
    return 0


def state_cell(v: RunView) -> str:
    status = v.status
    if status.unreachable:
        return "[red]bucket unreachable[/]"
    if status.data is None:
        return "[dim]not uploaded yet[/]" if status.problem == NOT_UPLOADED else \
            f"[yellow]{escape(status.problem[:40])}[/]"
    colour = {"succeeded": "green", "failed": "red"}.get(status.state, "")
    text = escape(status.label())
    return f"[{colour}]{text}[/]" if colour else text


def expires_cell(v: RunView) -> str:
    left = v.expires_in_s
    if left is None:
        return "-"
    return f"in {duration(left)}" if left > 0 else f"[red]passed {duration(left)} ago[/]"


def heartbeat_cell(v: RunView) -> str:
    age = v.heartbeat_age_s
    return "-" if age is None else f"{duration(age)} ago"


def show_all(console: Console, views: list[RunView]) -> None:
    if not views:
        console.print("No runs: nothing in Vultr carries the launcher's tag or a run "
                      "volume's label.")
        return
    table = Table(title="runs (from Vultr tags and the bucket)")
    for name in ("run", "stage", "state", "heartbeat", "instance", "volume", "$ so far",
                 "expires"):
        table.add_column(name, justify="right" if name == "$ so far" else "left")
    for v in views:
        instances = "\n".join(f"{i.id[:8]} {'ready' if i.ready else escape(_short(i.state))}"
                              for i in v.instances) or "[dim]gone[/]"
        volumes = "\n".join(f"{escape(vol.label)} ({'attached' if vol.attached_to else 'free'})"
                            for vol in v.volumes) or "[dim]gone[/]"
        table.add_row(escape(v.run_id), escape(v.stage), state_cell(v), heartbeat_cell(v),
                      instances, volumes, dollars(v.cost.usd), expires_cell(v))
    console.print(table)
    console.print(f"[dim]{ESTIMATE}[/]")
    problems = dict.fromkeys(v.status.problem for v in views if v.status.unreachable)
    for problem in problems:
        console.print(f"[red]{escape(problem)}[/]", soft_wrap=True)


def _short(state: str) -> str:
    """``status=pending power_status=… server_status=…`` -> ``pending``."""
    fields = dict(p.split("=", 1) for p in state.split() if "=" in p)
    return fields.get("status", state)


def show_one(console: Console, v: RunView) -> None:
    status = v.status
    console.print(f"[bold]run {escape(v.run_id)}[/]" + (f" (stage {escape(v.stage)})"
                                                         if v.stage else ""))
    rows = _detail_rows(v)
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        console.print(f"  {key:<{width}}  {value}", soft_wrap=True)
    if status.phases:
        table = Table(title="phases")
        for name in ("phase", "started", "ended", "seconds", "ok", "detail"):
            table.add_column(name)
        for p in status.phases:
            ok = {True: "[green]ok[/]", False: "[red]FAILED[/]"}.get(
                p.get("ok"), "-" if status.final else "running")
            table.add_row(*(escape(str(p.get(k) or "")) for k in ("name", "started", "ended")),
                          str(p.get("seconds", "")), ok, escape(str(p.get("detail") or "")))
        console.print(table)
    for note in status.texts("notes"):
        console.print(f"  note: {escape(note)}", soft_wrap=True)
    left = status.texts("left_behind")
    if left:
        console.print("[bold red]left behind[/] (each line says how to remove it):")
        for line in left:
            console.print(f"  {escape(line)}", soft_wrap=True)
    if v.exists and status.final:
        console.print(f"the run has ended but resources remain: `launcher teardown "
                      f"{escape(v.run_id)}` removes them", soft_wrap=True)


def _detail_rows(v: RunView) -> list[tuple[str, str]]:
    """(label, rich text) rows of ``status RUN``: state, bucket problems, reason, upload,
    expiry, cost, and the run's instances and volumes."""
    status = v.status
    rows = [("state", state_cell(v) + (f" — heartbeat {heartbeat_cell(v)}"
                                       if v.heartbeat_age_s is not None else ""))]
    if status.unreachable or (status.data is None and status.problem != NOT_UPLOADED):
        rows.append(("bucket", f"[red]{escape(status.problem)}[/]"))
    if status.data is not None and not status.final and not v.instances:
        rows.append(("bucket", "[yellow]the instance is gone but this status is not final: "
                               "the run's final status never reached the bucket[/]"))
    reason = str((status.data or {}).get("reason") or "")
    if reason:
        rows.append(("reason", escape(reason)))
    if status.data is not None:
        rows.append(("upload", "[green]verified[/]" if status.upload_verified
                     else "[yellow]not verified[/]" if status.final else "not verified yet"))
    rows.append(("expires", expires_cell(v)))
    cost = dollars(v.cost.usd)
    rows.append(("$ so far", f"{cost} (estimate: {escape(' + '.join(v.cost.parts))})"
                 if v.cost.parts else "-"))
    for instance in v.instances:
        rows.append(("instance", escape(f"{instance.id} {instance.label} {instance.region} "
                                        f"{instance.plan} {instance.state}")))
    for volume in v.volumes:
        where = f"attached to {volume.attached_to}" if volume.attached_to else "detached"
        rows.append(("volume", escape(f"{volume.id} {volume.label} {volume.size_gb} GB "
                                      f"{where}")))
    if not v.exists:
        rows.append(("resources", "none left in Vultr"))
    return rows
