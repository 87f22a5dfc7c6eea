"""``launcher status [RUN]``: every run, or one in detail, from Vultr's tags and the bucket."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone

from rich.console import Console

from launcher.commands import SUMMARIES, runcommon
from launcher.commands.runcommon import (
    BUCKET_PURPOSE,
    account_for,
    add_config_dir,
    bucket_for,
    dollars,
    run_id,
)
from launcher.operate.keptvolumes import KeptVolume, how_to_delete, kept_table, kept_volumes
from launcher.operate.nodes import NodeView
from launcher.operate.runs import DEFAULT_HEARTBEAT_S, RunView, list_views, view
from launcher.operate.runstatus import NOT_UPLOADED
from launcher.tables import Col, FitTable, print_table
from launcher.terminal import escape, make_console
from launcher.timefmt import duration

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
    kept: list[KeptVolume] = []
    with runcommon.open_provider(account, runcommon.provider_name(args)) as provider:
        if args.run:
            views = [view(args.run, provider, bucket)]
        else:
            views = list_views(provider, bucket)
            kept = [] if args.json else kept_volumes(provider)
    if args.json:
        data = views[0].as_dict() if args.run else [v.as_dict() for v in views]
        print(json.dumps(data, indent=2))
        return 0
    console = make_console()
    if args.run:
        show_one(console, views[0], provider.title)
    else:
        show_all(console, views, provider.title)
        show_kept(console, kept, account.vultr_api_url)
    return 0


def state_cell(v: RunView) -> str:
    status = v.status
    if status.unreachable:
        return "[red]bucket unreachable[/]"
    if v.starting:
        return f"[cyan]{escape(starting_text(v))}[/]"
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
    age, due = v.heartbeat_age_s, v.first_heartbeat_in_s
    if age is not None:
        return f"{duration(age)} ago"
    if due is None:
        return "-"
    return f"none yet; first in ≥ {duration(due)}" if due > 0 else \
        f"none yet ({duration(due - DEFAULT_HEARTBEAT_S)} since created)"


def starting_text(v: RunView) -> str:
    """A run with an instance and no status yet, from its instance's state."""
    first = v.instances[0]
    fields = _state_fields(first.state)
    if first.ready:
        return "starting: instance up, no status yet"
    if fields.get("status") != "active":
        return f"starting: instance {fields.get('status', first.state)}"
    return f"starting: booting (server {fields.get('server_status', '?')})"


def first_heartbeat_text(v: RunView) -> str:
    """``status RUN`` of a starting run: when its first status can come, and why no
    sooner."""
    due = v.first_heartbeat_in_s
    when = "-" if due is None else datetime.fromtimestamp(
        v.now + due, timezone.utc).strftime("%H:%M:%S UTC")
    eta = "" if due is None else f"not before {when} (in {duration(due)})" if due > 0 \
        else f"expected any time since {when} ({duration(due)} ago)"
    return (f"none yet: the runner uploads its first status heartbeat_s "
            f"({DEFAULT_HEARTBEAT_S} s unless the stage sets it) after training starts, "
            f"which follows boot and the volume, code, data and health phases: {eta}; "
            f"`launcher logs {escape(v.run_id)} -f` waits for it")


def show_all(console: Console, views: list[RunView], cloud: str = "Vultr") -> None:
    if not views:
        console.print(f"No runs: nothing in {cloud} carries the launcher's tag or a run "
                      "volume's label.")
        return
    table = FitTable(f"runs (from {cloud}'s tags or labels and the bucket)",
                     [Col(name, "right" if name == "$ so far" else "left")
                      for name in ("run", "stage", "state", "heartbeat", "instance", "volume",
                                   "$ so far", "expires")])
    for v in views:
        instances = "\n".join(
            f"{escape(i.id[:8])} {'ready' if i.ready else escape(_short(i.state))}"
            for i in v.instances) or "[dim]gone[/]"
        volumes = "\n".join(f"{escape(vol.label)} ({'attached' if vol.attached_to else 'free'})"
                            for vol in v.volumes) or "[dim]gone[/]"
        table.add_row(escape(v.run_id), escape(v.stage), state_cell(v), heartbeat_cell(v),
                      instances, volumes, dollars(v.cost.usd), expires_cell(v))
    print_table(console, table)
    console.print(f"[dim]{ESTIMATE}[/]")
    problems = dict.fromkeys(v.status.problem for v in views if v.status.unreachable)
    for problem in problems:
        console.print(f"[red]{escape(problem)}[/]", soft_wrap=True)


def show_kept(console: Console, kept: list[KeptVolume], api_url: str) -> None:
    """The reusable volumes after the runs table: they belong to no run, and bill."""
    if kept:
        print_table(console, kept_table(kept))
        console.print(f"[dim]{escape(how_to_delete(api_url))}[/]", soft_wrap=True)


def _short(state: str) -> str:
    """``status=pending power_status=… server_status=…`` -> ``pending``."""
    return _state_fields(state).get("status", state)


def _state_fields(state: str) -> dict[str, str]:
    """``status=pending power_status=…`` -> ``{"status": "pending", …}``."""
    return dict(p.split("=", 1) for p in state.split() if "=" in p)


def show_one(console: Console, v: RunView, cloud: str = "Vultr") -> None:
    status = v.status
    console.print(f"[bold]run {escape(v.run_id)}[/]" + (f" (stage {escape(v.stage)})"
                                                         if v.stage else ""))
    rows = _detail_rows(v, cloud)
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        console.print(f"  {key:<{width}}  {value}", soft_wrap=True)
    if status.phases:
        table = FitTable("phases", [Col(name) for name in ("phase", "started", "ended",
                                                           "seconds", "ok", "detail")])
        for p in status.phases:
            ok = {True: "[green]ok[/]", False: "[red]FAILED[/]"}.get(
                p.get("ok"), "-" if status.final else "running")
            table.add_row(*(escape(str(p.get(k) or "")) for k in ("name", "started", "ended")),
                          escape(str(p.get("seconds", ""))), ok,
                          escape(str(p.get("detail") or "")))
        print_table(console, table)
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


def _detail_rows(v: RunView, cloud: str) -> list[tuple[str, str]]:
    """(label, rich text) rows of ``status RUN``: state, bucket problems, reason, upload,
    expiry, cost, and the run's instances and volumes."""
    status = v.status
    rows = [("state", state_cell(v) + (f" — heartbeat {heartbeat_cell(v)}"
                                       if v.heartbeat_age_s is not None else ""))]
    if v.starting:
        rows.append(("heartbeat", first_heartbeat_text(v)))
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
    for node in v.nodes:
        rows.append((f"node {node.index}", escape(node_text(node))))
    if not v.exists:
        rows.append(("resources", f"none left in {cloud}"))
    return rows


def node_text(node: NodeView) -> str:
    """One node of an N-node run: its instance, private address, volume and status."""
    i, vol, status = node.instance, node.volume, node.status
    instance = f"instance {i.id} ({i.internal_ip or 'no private address yet'})" if i \
        else "instance gone"
    volume = f"volume {vol.id}" if vol else "volume gone"
    upload = "upload verified" if status.upload_verified else \
        "upload not verified" if status.final else "upload not verified yet"
    return f"{instance}, {volume}; status {status.label()}; {upload}"
