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

from launcher import __version__
from launcher.commands import SUMMARIES, load
from launcher.errors import LauncherError

GLOBAL_VALUED = ("--env-file",)  # global options that take a value (skipped when scanning)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser (``only`` None), or one whose command ``only`` is fully registered
    and every other command is a name with its summary ("" registers none): enough for
    ``--help`` and for argparse's "invalid choice" message, without importing them all."""
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
    for name, summary in SUMMARIES.items():
        if only is None or only == name:
            load(name).register(sub)
        else:
            sub.add_parser(name, help=summary)
    return parser


def chosen_command(argv: Sequence[str]) -> str:
    """The command ``argv`` names ("" when none does): its first positional word, global
    options and their values skipped."""
    words = iter(argv)
    for word in words:
        if word in GLOBAL_VALUED:
            next(words, None)
        elif not word.startswith("-"):
            return word if word in SUMMARIES else ""
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(chosen_command(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    try:
        return int(args.handler(args) or 0)
    except LauncherError as exc:
        _error(f"[bold red]error:[/] {_escape(str(exc))}")
        return exc.exit_code
    except KeyboardInterrupt:
        _error("interrupted")
        return 130


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _error(markup: str) -> None:
    from rich.console import Console  # only on the error path: --help stays light

    Console(stderr=True, highlight=False).print(markup, soft_wrap=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
