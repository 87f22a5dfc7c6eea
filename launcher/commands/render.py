"""``launcher render``: a stage's cloud-init document, checked, with secrets masked."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from rich.markup import escape

from launcher.commands import SUMMARIES, runcommon
from launcher.commands.runcommon import add_config_dir
from launcher.config import (
    Account,
    add_override_flags,
    config_dir_for,
    load_account,
    overrides_from_args,
)
from launcher.errors import ConfigError
from launcher.render.preview import Preview, render_stage
from launcher.terminal import make_console


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "render", help=SUMMARIES["render"],
        description="Build, validate and measure the cloud-init document a stage would be "
        "launched with, and print it with every secret replaced by <secret:NAME>. Ids that "
        "only a launch knows are shown as <created-at-launch> / <chosen-at-launch>.")
    parser.add_argument("--stage", required=True, help="stage name (configs/stages/NAME.yaml)")
    add_config_dir(parser)
    parser.add_argument("--out", type=Path, default=None, metavar="FILE",
                        help="write the masked document to FILE instead of printing it")
    parser.add_argument("--json", action="store_true",
                        help="print JSON: sizes, secrets set, runner files and the document")
    add_override_flags(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if runcommon.provider_name(args) != "vultr":
        raise ConfigError("render shows the cloud-init document a Vultr instance boots; a "
                          "Vast.ai instance boots an onstart script instead",
                          hint=f"`launcher run --provider vast --stage {args.stage} "
                          "--dry-run` shows that script, its run spec and the calls")
    config_dir = config_dir_for(args.config_dir, os.environ)
    account = load_account(os.environ, getattr(args, "env_file", None))
    preview = render_stage(config_dir, args.stage, account, overrides_from_args(args))
    if args.out is not None:
        _write(args.out, preview.document.redacted_text())
    if args.json:
        data = preview.as_dict(with_document=args.out is None)
        if args.out is not None:
            data["out"] = str(args.out)
        print(json.dumps(data, indent=2))
    elif args.out is None:
        print(preview.document.redacted_text(), end="")
    _summary(preview, account, args.out)
    return 0


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="ascii")
    except OSError as exc:
        raise ConfigError(f"--out {path}: cannot write: {exc.strerror}") from None


def _summary(preview: Preview, account: Account, out: Path | None) -> None:
    where = f" -> {out}" if out is not None else ""
    line = f"{preview.stage.name}: {preview.document.size_report()}{where}"
    if preview.variables_unset:
        line += (f"; not set in the environment or {account.env_file.path}: "
                 f"{', '.join(preview.variables_unset)}")
    console = make_console(stderr=True)
    console.print(escape(line), soft_wrap=True)
