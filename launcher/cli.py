"""The ``launcher`` command line: parse, call one library function, render.

Each command lives in ``launcher/commands/`` and registers itself through ``register(sub)``,
setting ``handler`` on its parser. This module is the one error funnel: every
:class:`~launcher.errors.LauncherError` becomes one clear line on stderr and a non-zero exit
code; nothing else prints tracebacks at a user.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
import textwrap
from collections.abc import Sequence

from launcher import __version__
from launcher.commands import SUMMARIES, load
from launcher.errors import LauncherError

GLOBAL_VALUED = ("--env-file", "--provider")  # global options that take a value
ENV_FILE_HELP = ("the .env file with keys and account settings (default: $LAUNCHER_ENV_FILE "
                 "or ./.env); the environment wins over it; before or after the command")
PROVIDER_CHOICES = ("vultr", "vast", "all")
PROVIDER_HELP = ("the cloud: vultr or vast (`offers` also takes all); default: `provider:` in "
                 "the config folder's launcher.yaml, else vultr; before or after the command")
# The exit statuses, for --help and the README (tests/test_cli_help.py holds them to both).
EXIT_CODES = (
    (0, "done"),
    (1, "done, but not what was asked: a launch declined or refused by every offer, a run "
        "that cannot be resumed as it is, something left after a teardown, a log not there"),
    (2, "bad input: a flag, a file, an environment variable, or the command line itself"),
    (3, "Vultr's API or the bucket refused or failed a call (the error names which, and "
        "where)"),
    (4, "a wait ended without the wanted state (timed out, or the resource failed)"),
    (5, "a launch failed and its rollback could not delete everything: what may still bill "
        "is listed with the commands that delete it"),
    (130, "interrupted (Ctrl-C)"),
)


def epilog() -> str:
    """The main ``--help``'s closing text: where Vultr is reached, and the exit statuses."""
    codes = "\n".join(textwrap.fill(f"  {code:>3}  {text}", 79, subsequent_indent=" " * 7)
                      for code, text in EXIT_CODES)
    return ("Vultr is reached at VULTR_API_URL (default https://api.vultr.com/v2) with the key\n"
            f"in VULTR_KEY.\n\nexit status:\n{codes}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser (``only`` None), or one whose command ``only`` is fully registered
    and every other command is a name with its summary ("" registers none): enough for
    ``--help`` and for argparse's "invalid choice" message, without importing them all."""
    parser = argparse.ArgumentParser(
        prog="launcher",
        description="Fire-and-forget GPU training runs on Vultr.",
        epilog=epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"launcher {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log API calls to stderr")
    parser.add_argument("--env-file", default=None, metavar="PATH", help=ENV_FILE_HELP)
    parser.add_argument("--provider", default=None, choices=PROVIDER_CHOICES,
                        help=PROVIDER_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, summary in SUMMARIES.items():
        if only is None or only == name:
            load(name).register(sub)
            _globals_after(sub.choices[name])
        else:
            sub.add_parser(name, help=summary)
    return parser


def _globals_after(parser: argparse.ArgumentParser) -> None:
    """``--env-file`` and ``--provider`` on a command's parser and its sub-commands' too, so
    they may follow the command (``launcher run --env-file X --stage S``). SUPPRESS: given
    before the command only, they are not reset to a default by the command's parser."""
    if "--env-file" not in parser._option_string_actions:
        parser.add_argument("--env-file", default=argparse.SUPPRESS, metavar="PATH",
                            help=ENV_FILE_HELP)
    if "--provider" not in parser._option_string_actions:
        parser.add_argument("--provider", default=argparse.SUPPRESS, choices=PROVIDER_CHOICES,
                            help=PROVIDER_HELP)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _globals_after(child)


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
    """Run one command; whatever stops it ends as one line on stderr and an exit code."""
    try:
        return _run(list(sys.argv[1:] if argv is None else argv))
    except LauncherError as exc:
        _error(f"[bold red]error:[/] {_escape(str(exc))}")
        return exc.exit_code
    except KeyboardInterrupt:  # also while the parser and the command's modules load
        _error("interrupted")
        return 130
    except BrokenPipeError:  # `launcher offers | head -1`: the reader has all it wanted
        _silence_stdout()
        return 1
    except OSError as exc:
        return _os_error(exc)


def _run(argv: list[str]) -> int:
    parser = build_parser(chosen_command(argv))
    for word in argv:
        if word.startswith("-") and word.endswith("=--"):
            # argparse (before 3.12) drops a "--" value and hands the command a list
            parser.error(f"{word}: '--' is not a value for {word[:-3]}")
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    code = int(args.handler(args) or 0)
    sys.stdout.flush()  # a full device or a closed pipe is met here, inside the funnel
    return code


def _os_error(exc: OSError) -> int:
    """A file or device the command met (a path too long, a full disk, a folder where a
    file belongs): one line naming it; 2 when it names a file the user gave, else 1."""
    if exc.errno == errno.ENOSPC:
        _silence_stdout()
        _error(f"[bold red]error:[/] cannot write the output: {exc.strerror}")
        return 1
    reason = exc.strerror or type(exc).__name__
    if exc.filename is None:
        _error(f"[bold red]error:[/] {_escape(reason)}")
        return 1
    name = str(exc.filename)
    shown = name if len(name) <= 200 else f"{name[:100]}…({len(name)} characters)"
    _error(f"[bold red]error:[/] {_escape(shown)}: {_escape(reason)}")
    return 2


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _escape(text: str) -> str:
    from launcher.terminal import escape  # errors quote the API's and the bucket's texts

    return escape(text)


def _error(markup: str) -> None:
    from launcher.terminal import make_console  # only on the error path: --help stays light

    make_console(stderr=True, soft_wrap=True).print(markup)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
