"""``launcher logs RUN [--follow]``: a run's log from the bucket (also after the instance is
gone); ``--machine``: the machine's own output from the cloud
(:mod:`launcher.operate.machinelog`)."""

from __future__ import annotations

import argparse
import sys

from launcher.commands import SUMMARIES, runcommon
from launcher.commands.runcommon import (
    BUCKET_PURPOSE,
    account_for,
    add_config_dir,
    config_dir,
    parse_duration,
    positive_int,
    run_id,
)
from launcher.config import Account
from launcher.errors import ConfigError
from launcher.operate.access import open_bucket
from launcher.operate.machinelog import (
    OpenProvider,
    follow_aside,
    missing_log_hint,
    read_machine_log,
)
from launcher.operate.runlogs import LOGS, LogMissing, follow, read_log
from launcher.terminal import printable
from launcher.timefmt import duration

DEFAULT_MAX_WAIT_S = 12 * 3600.0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "logs", help=SUMMARIES["logs"],
        description="Print a run's training log (or with --runner, the runner's log) as the "
        "bucket has it: the heartbeat uploads it every heartbeat_s while the run trains, the "
        "upload phase sends it whole. Works after the instance is gone. --machine asks the "
        "cloud instead for the machine's own output (Vast.ai: the container's log), which "
        "shows why a machine failed before anything reached the bucket.")
    parser.add_argument("run", type=run_id, metavar="RUN", help="the run id")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--train", dest="which", action="store_const", const="train",
                       help="logs/train.log: the training command's output (default)")
    which.add_argument("--runner", dest="which", action="store_const", const="runner",
                       help="logs/runner.log: the runner's phases, uploads and teardown")
    which.add_argument("--machine", dest="which", action="store_const", const="machine",
                       help="the run's instance's own output as the cloud keeps it (Vast.ai "
                       "only; read once, not with --follow)")
    parser.add_argument("--tail", type=positive_int, metavar="N",
                        help="with --machine: only the last N lines")
    parser.add_argument("-f", "--follow", action="store_true",
                        help="keep polling the bucket and print what is new, until the run "
                        "has ended and its log stopped growing (or Ctrl-C, or --max-wait)")
    parser.add_argument("--max-wait", type=parse_duration, default=DEFAULT_MAX_WAIT_S,
                        metavar="DURATION", help="with --follow: give up after this long "
                        "(e.g. 30m, 12h; default 12h)")
    add_config_dir(parser, BUCKET_PURPOSE)
    parser.set_defaults(handler=run, which="train")


def _out(text: str) -> None:
    sys.stdout.write(printable(text))
    sys.stdout.flush()


def _note(text: str) -> None:
    sys.stderr.write(printable(text) + "\n")
    sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    account = account_for(args)
    if args.which == "machine":
        return _machine(args, account)
    if args.tail is not None:
        raise ConfigError("--tail goes with --machine (the bucket's logs are printed whole)",
                          hint=f"`launcher logs {args.run} --machine --tail {args.tail}`")
    bucket = open_bucket(account, config_dir(args))
    if not args.follow:
        try:
            text = read_log(bucket, args.run, args.which)
        except LogMissing as exc:
            raise LogMissing(exc.message, hint=missing_log_hint(
                _provider(args, account), args.run) or exc.hint) from None
        _out(text)
        return 0
    result = follow(bucket, args.run, args.which, _out, _note, max_wait_s=args.max_wait,
                    aside=follow_aside(runcommon.capabilities_of(runcommon.provider_name(args)),
                                      args.run))
    if not result.seen:
        _note(f"({LOGS[args.which]} never appeared in the bucket)")
    if result.reason == "deadline":
        _note(f"(stopped following after {duration(args.max_wait)}; the run is "
              f"{result.state or 'not reporting'}: `launcher logs {args.run} -f` resumes)")
        return 1
    _note(f"(run {result.state}; log complete)")
    return 0


def _provider(args: argparse.Namespace, account: Account) -> OpenProvider:
    """Opens the run's provider when called (a context manager)."""
    return lambda: runcommon.open_provider(account, runcommon.provider_name(args))


def _machine(args: argparse.Namespace, account: Account) -> int:
    if args.follow:
        raise ConfigError("--machine reads the machine's log once; --follow follows the "
                          "bucket's logs", hint=f"run `launcher logs {args.run} --machine` "
                          f"again for what is new, or `launcher logs {args.run} -f`")
    with _provider(args, account)() as provider:
        found = read_machine_log(provider, args.run, args.tail)
    _out(found.text)
    if not found.text:
        _note(f"(instance {found.instance_id} has printed nothing yet)")
    return 0
