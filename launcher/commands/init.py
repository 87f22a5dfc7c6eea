"""``launcher init [DIR]``: write the starter configuration into a training checkout."""

from __future__ import annotations

import argparse
from pathlib import Path

from launcher.commands import SUMMARIES
from launcher.config.starter import UPS_ENTRY, write_starter
from launcher.terminal import escape, make_console


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "init", help=SUMMARIES["init"],
        description="Write .launcher/launcher.yaml and .launcher/stages/*.yaml (the shipped "
        "defaults and stages) into DIR, the training repository's checkout. Every command run "
        "from there reads .launcher/ first. Nothing is written when any of those files "
        "exists already.")
    parser.add_argument("dir", nargs="?", type=Path, default=Path("."), metavar="DIR",
                        help="the training checkout (default: the current folder)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    starter = write_starter(args.dir)
    console = make_console()
    for path in starter.written:
        console.print(f"wrote {escape(str(path))}")
    if not starter.is_ups:
        console.print(f"note: {escape(str(args.dir))} has no {UPS_ENTRY}: the operator, "
                      "diffusion and full stages run that script of the training repository; "
                      "give other code its own stage (command:) in .launcher/stages/")
    console.print("next: set VULTR_KEY, B2_* and WANDB_API_KEY (environment or .env), then "
                  "`launcher doctor` and `launcher config show --stage diffusion`")
    return 0
