"""``launcher run``: plan a stage's launch, confirm it, and create only what is missing.

Parse -> :func:`launcher.provision.run_stage` -> render. Progress (spinners on every wait,
failover and rollback notes) goes to stderr; the plan, the result or the dry run's calls to
stdout (``--json``: one JSON document on stdout, nothing else there).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from launcher.commands import SUMMARIES, runcommon
from launcher.commands.runcommon import add_config_dir
from launcher.config import (
    add_override_flags,
    config_dir_for,
    load_account,
    overrides_from_args,
)
from launcher.provision import (
    DryRunResult,
    LaunchPlan,
    LaunchRequest,
    LaunchResult,
    real_deps,
    run_stage,
)
from launcher.tables import Col, FitTable, print_table
from launcher.terminal import escape, make_console

LAUNCH_REFUSAL = ("no terminal to confirm the launch on: pass --yes to launch without asking "
                  "(or --dry-run to see what it would do)")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "run", help=SUMMARIES["run"],
        description="Plan a launch of stage S (snapshot, GPU offers per profile in the order "
        "they are tried, volume, worst-case cost), ask for confirmation, then create what the "
        "run does not have yet: upload the code bundle, create or reuse the volume, create the "
        "instance from the snapshot with the run document, attach the volume live. A capacity "
        "refusal moves on to the next offer; any other failure or Ctrl-C deletes what this "
        "command created. --run-id resumes a run: what it already has is never created twice.")
    parser.add_argument("--stage", required=True, help="stage name (configs/stages/NAME.yaml)")
    add_config_dir(parser)
    parser.add_argument("--code-dir", type=Path, default=Path(), metavar="DIR",
                        help="the git checkout packed as the code bundle (default: .); only "
                        "committed files travel")
    parser.add_argument("--run-id", default=None, metavar="ID",
                        help="resume (reconcile) this run instead of starting a new one")
    parser.add_argument("-y", "--yes", action="store_true",
                        help="launch without asking (required without a terminal)")
    parser.add_argument("--dry-run", action="store_true",
                        help="resolve everything and print the calls a launch would make, the "
                        "estimate and the document; create and upload nothing")
    parser.add_argument("--json", action="store_true", help="print one JSON result on stdout")
    parser.add_argument("--allow-second-volume", action="store_true",
                        help="with --reuse-volume NAME: allow creating another volume "
                        "labelled launcher-cache-NAME in a candidate region where there is "
                        "none; by default those candidates are left out while one exists "
                        "elsewhere, and the launch is refused when none is left (each volume "
                        "bills on its own)")
    add_override_flags(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    account = load_account(os.environ, getattr(args, "env_file", None))
    request = LaunchRequest(stage=args.stage,
                            config_dir=config_dir_for(args.config_dir, os.environ),
                            overrides=overrides_from_args(args), run_id=args.run_id,
                            code_dir=args.code_dir, dry_run=args.dry_run,
                            allow_second_volume=args.allow_second_volume)
    out = make_console()
    err = make_console(stderr=True)
    with runcommon.open_provider(account, runcommon.provider_name(args)) as provider:
        deps = real_deps(account, lambda plan: confirm(plan, args, out, err),
                         ConsoleProgress(err, spinners=not args.json), provider)
        result = run_stage(request, deps)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    elif isinstance(result, DryRunResult):
        show_dry_run(out, result)
    else:
        show_result(out, result)
    return 0


class ConsoleProgress:
    """Progress on stderr: notes, warnings, and a spinner for each wait."""

    def __init__(self, console: Console, spinners: bool = True) -> None:
        self.console = console
        self.spinners = spinners

    def note(self, text: str) -> None:
        self.console.print(escape(text), soft_wrap=True)

    def warn(self, text: str) -> None:
        self.console.print(f"[yellow]warning:[/] {escape(text)}", soft_wrap=True)

    @contextmanager
    def waiting(self, text: str) -> Iterator[None]:
        started = time.monotonic()
        if self.spinners:
            with self.console.status(escape(text)):
                yield
        else:
            yield
        self.console.print(f"{escape(text)}: done ({time.monotonic() - started:.0f}s)",
                           soft_wrap=True)


def confirm(plan: LaunchPlan, args: argparse.Namespace, out: Console, err: Console) -> bool:
    """Show the plan, then ``--yes``, a prompt on a terminal, or a refusal (exit 2):
    :func:`launcher.commands.runcommon.confirm`."""
    show_plan(err if args.json else out, plan)
    return runcommon.confirm("launch it?", args.yes, refusal=LAUNCH_REFUSAL, console=err)


def plan_table(plan: LaunchPlan) -> FitTable:
    table = FitTable(f"launch plan: run {escape(plan.run_id)} (stage {plan.stage.name}), "
                     "candidates in the order they are tried",
                     [Col(name, justify) for name, justify in (
                         ("#", "right"), ("profile", "left"), ("plan", "left"),
                         ("GPU", "left"), ("region", "left"), ("volume", "left"),
                         ("$/h", "right"), ("max h", "right"), ("worst case", "right"))])
    for number, c in enumerate(plan.candidates, 1):
        o, e = c.offer, c.estimate
        gpu = f"{o.gpu_count or '?'} × {o.gpu_model or o.gpu_type or '?'}"
        table.add_row(str(number), escape(c.profile.name), escape(o.plan_id), escape(gpu),
                      o.region, escape(c.volume.describe()), f"{e.usd_per_hour:,.2f}",
                      f"{e.hours:g}", f"${e.worst_case_usd:,.2f}")
    return table


def show_plan(console: Console, plan: LaunchPlan) -> None:
    print_table(console, plan_table(plan))
    s = plan.snapshot
    console.print(f"snapshot: {escape(s.id)} ({escape(s.description)}; {escape(s.why)})",
                  soft_wrap=True)
    if plan.resuming:
        have = [f"instance {i.id}" for i in plan.existing.instances] + \
               [f"volume {v.id}" for v in plan.existing.volumes]
        console.print(f"resuming run {plan.run_id}: it already has {', '.join(have)}")
    if plan.ssh_key is not None:
        k = plan.ssh_key
        action = f"register it as {k.name} (an account key, kept)" if k.must_register \
            else f"the account has it ({k.key_id})"
        console.print(f"SSH key: {escape(k.path)} {k.fingerprint}: {escape(action)}",
                      soft_wrap=True)
    e = plan.first.estimate
    console.print(f"first choice: ${e.plan_usd_per_hour:,.2f}/h plan + "
                  f"${e.volume_usd_per_hour:,.3f}/h volume for at most {e.hours:g} h: worst "
                  f"case [bold]${e.worst_case_usd:,.2f}[/]", soft_wrap=True)
    for note in plan.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)


def show_dry_run(console: Console, result: DryRunResult) -> None:
    show_plan(console, result.plan)
    console.print("\n[bold]dry run[/]: nothing was created or uploaded. A launch would make "
                  "these calls, in order:")
    for number, call in enumerate(result.calls, 1):
        body = f" {json.dumps(call.body)}" if call.body is not None else ""
        note = f"  ({call.note})" if call.note else ""
        console.print(f"  {number}. {call.method} {escape(call.target)}{escape(body)}"
                      f"{escape(note)}", soft_wrap=True)
    if result.code is not None:
        c = result.code
        dirty = ", uncommitted changes left out" if c.dirty else ""
        console.print(f"code bundle: {c.size:,} bytes, sha256 {c.sha256}, git {c.git_sha}"
                      f"{dirty}", soft_wrap=True)
    if result.spec:
        console.print("\nrun spec (uploaded beside the runner; the bootstrap fetches both):")
        console.print(result.spec, end="", soft_wrap=True, markup=False)
    if result.document:
        console.print(f"\nrun document ({escape(result.document_size)}), secrets masked:")
        console.print(result.document, end="", soft_wrap=True, markup=False)


def show_result(console: Console, result: LaunchResult) -> None:
    i, v = result.instance, result.volume
    disk = f"volume {escape(v.id)} attached live" if v is not None else \
        "its own disk is the cache"
    if result.nodes:
        console.print(f"[bold green]launched[/] run [bold]{escape(result.run_id)}[/]: "
                      f"{len(result.nodes)} nodes ({escape(i.plan)} in {i.region}), each with "
                      "its volume attached live", soft_wrap=True)
        for node in result.nodes:
            ip = node.instance.internal_ip or "not known yet"
            console.print(f"  node {node.index}: instance {escape(node.instance.id)} in "
                          f"{node.instance.region}, private address {escape(ip)}, volume "
                          f"{escape(node.volume.id)}", soft_wrap=True)
    else:
        console.print(f"[bold green]launched[/] run [bold]{escape(result.run_id)}[/]: instance "
                      f"{escape(i.id)} ({escape(i.plan)} in {i.region}), {disk}",
                      soft_wrap=True)
    if result.created:
        console.print(f"created: {escape(', '.join(result.created))}", soft_wrap=True)
    if result.reused:
        console.print(f"reused: {escape(', '.join(result.reused))}", soft_wrap=True)
    if result.deadline_epoch:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(result.deadline_epoch))
        cost = (f" (worst case ${result.candidate.estimate.worst_case_usd:,.2f})"
                if result.candidate else "")
        who = "every node tears itself down" if result.nodes else \
            "the instance tears itself down"
        console.print(f"deadline: {when}{cost}; {who} by then")
    console.print("follow it:\n"
                  f"  launcher status {escape(result.run_id)}\n"
                  f"  launcher logs {escape(result.run_id)} --follow")
