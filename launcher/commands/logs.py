"""``launcher logs RUN [--follow]``: a run's log from the bucket (also after the instance is
gone)."""

from __future__ import annotations

import argparse
import sys

from launcher.commands import SUMMARIES
from launcher.commands.runcommon import (
    BUCKET_PURPOSE,
    account_for,
    add_config_dir,
    config_dir,
    parse_duration,
    run_id,
)
from launcher.operate.access import open_bucket
from launcher.operate.runlogs import LOGS, follow, read_log
from launcher.terminal import printable
from launcher.timefmt import duration

DEFAULT_MAX_WAIT_S = 12 * 3600.0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "logs", help=SUMMARIES["logs"],
        description="Print a run's training log (or with --runner, the runner's log) as the "
        "bucket has it: the heartbeat uploads it every heartbeat_s while the run trains, the "
        "upload phase sends it whole. Works after the instance is gone.")
    parser.add_argument("run", type=run_id, metavar="RUN", help="the run id")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--train", dest="which", action="store_const", const="train",
                       help="logs/train.log: the training command's output (default)")
    which.add_argument("--runner", dest="which", action="store_const", const="runner",
                       help="logs/runner.log: the runner's phases, uploads and teardown")
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
    bucket = open_bucket(account_for(args), config_dir(args))
    if not args.follow:
        _out(read_log(bucket, args.run, args.which))
        return 0
    result = follow(bucket, args.run, args.which, _out, _note, max_wait_s=args.max_wait)
    if not result.seen:
        _note(f"({LOGS[args.which]} never appeared in the bucket)")
    if result.reason == "deadline":
        _note(f"(stopped following after {duration(args.max_wait)}; the run is "
              f"{result.state or 'not reporting'}: `launcher logs {args.run} -f` resumes)")
        return 1
    _note(f"(run {result.state}; log complete)")
    return 0
