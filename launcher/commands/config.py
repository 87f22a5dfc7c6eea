"""``launcher config show``: the merged, overridden configuration with every secret masked."""

from __future__ import annotations

import argparse
import json
import os
import shlex
from typing import Any

import yaml
from rich.markup import escape

from launcher.commands import SUMMARIES
from launcher.commands.runcommon import add_config_dir
from launcher.config import (
    add_override_flags,
    config_dir_for,
    config_report,
    load_account,
    overrides_from_args,
)
from launcher.secrets import redact
from launcher.terminal import make_console


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "config", help=SUMMARIES["config"],
        description="Inspect the launcher's configuration.")
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION")
    show = actions.add_parser(
        "show", help="print the merged configuration, every secret masked",
        description="Print the account variables (keys as *** with where each came from: "
        "env, .env file or unset, and the alias it was set as, if one) and, with --stage, the "
        "stage merged over the defaults, the account's bucket/endpoint/region/W&B settings "
        "and the override flags, in a stage file's names (pasted into stages/NAME.yaml it "
        "loads as the same stage), then what only launcher.yaml sets.")
    show.add_argument("--stage", default=None, help="stage name (configs/stages/NAME.yaml)")
    add_config_dir(show)
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_override_flags(show)
    show.set_defaults(handler=run_show)
    parser.set_defaults(handler=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_show(args: argparse.Namespace) -> int:
    account = load_account(os.environ, getattr(args, "env_file", None))
    report = config_report(config_dir_for(args.config_dir, os.environ), args.stage, account,
                           overrides_from_args(args))
    text = json.dumps(report, indent=2) if args.json else _text(report)
    # Belt and braces: a key pasted into a stage's env or command is masked here too.
    print(redact(text, *account.secrets()))
    errors = make_console(stderr=True)
    for note in report["notes"]:
        errors.print(escape(redact(f"note: {note}", *account.secrets())), soft_wrap=True)
    return 0


def _text(report: dict[str, Any]) -> str:
    env_file = report["env_file"]
    found = "found" if env_file["found"] else "not found"
    lines = [f"config dir: {report['config_dir']} (stages: {', '.join(report['stages'])})",
             f"env file: {env_file['path']} ({env_file['named_by']}, {found})", "",
             "account (the environment wins over the .env file):"]
    width = max(map(len, report["variables"]))
    for name, shown in report["variables"].items():
        value = "-" if shown["value"] is None else shown["value"]
        default = shown["source"] == "unset" and shown["value"] is not None
        source = "unset: the default" if default else shown["source"]
        if shown.get("name", name) != name:
            source += f", as {shown['name']}"
        lines.append(f"  {name:<{width}}  {value}  ({source})")
    pairs = ", ".join(f"{k} <- {v}" for k, v in report["instance_secrets"].items())
    lines += ["", f"instance secrets file: {pairs}"]
    if "stage" in report:
        stage = report["stage"]
        lines += ["", f"stage {stage['name']} ({', '.join(report['stage_files'])}), merged, "
                  "as a stage file writes it:", _yaml(stage), "",
                  f"the command it runs: {shlex.join(report['command'])}", "",
                  "and from launcher.yaml and the account (a stage file cannot set these):",
                  _yaml(report["launcher_yaml"])]
    return "\n".join(lines)


def _yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, width=100, allow_unicode=True).rstrip()
