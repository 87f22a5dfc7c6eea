"""The ``launcher`` command line: parse, call one library function, render.

Each command lives in ``launcher/commands/`` and registers itself through ``register(sub)``,
setting ``handler`` on its parser. This module is the one error funnel: every
:class:`~launcher.errors.LauncherError` becomes one clear line on stderr and a non-zero exit
code; nothing else prints tracebacks at a user.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape

from launcher import __version__
from launcher.commands import (
    config,
    demo,
    doctor,
    emulator,
    gc,
    images,
    logs,
    offers,
    render,
    run,
    ssh,
    status,
    teardown,
)
from launcher.errors import LauncherError

COMMANDS = (offers, demo, emulator, render, config)
COMMANDS += (status, logs, ssh, teardown, gc, doctor)
COMMANDS += (images,)
COMMANDS += (run,)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="launcher",
        description="Fire-and-forget GPU training runs on Vultr.",
        epilog="Vultr is reached at VULTR_API_URL (default https://api.vultr.com/v2) "
        "with the key in VULTR_KEY.",
    )
    parser.add_argument("--version", action="version", version=f"launcher {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log API calls to stderr")
    parser.add_argument("--env-file", default=None, metavar="PATH",
                        help="the .env file with keys and account settings (default: "
                        "$LAUNCHER_ENV_FILE or ./.env); the environment wins over it")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    errors = Console(stderr=True, highlight=False)
    try:
        return int(args.handler(args) or 0)
    except LauncherError as exc:
        errors.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        errors.print("interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
