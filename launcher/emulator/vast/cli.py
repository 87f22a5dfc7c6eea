"""``python -m launcher.emulator.vast``: serve the Vast emulator on 127.0.0.1.

Prints exactly one line, ``VAST_API_URL=http://127.0.0.1:PORT/api/v0``, and never the key.
The key is the value of the variable named by ``--key-env`` (default ``VAST_API_KEY``, the
name Vast's own docs export); options are the Vultr emulator's (``launcher.emulator.cli``).
"""

from __future__ import annotations

import argparse
import sys
import threading

from launcher.emulator import cli as shared
from launcher.emulator.ratelimit import RateLimit
from launcher.emulator.vast.server import VastEmulator
from launcher.emulator.vast.timing import VastTiming

KEY_ENV = "VAST_API_KEY"


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The shared emulator options, with ``--key-env`` defaulting to VAST_API_KEY."""
    parser = parser or argparse.ArgumentParser(
        prog="python -m launcher.emulator.vast",
        description="Serve a loopback Vast.ai API emulator on 127.0.0.1.")
    return shared.build_parser(parser, key_env=KEY_ENV)


def run(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Serve until SIGTERM/SIGINT (or ``stop``). ``--no-rate-limit`` is accepted; the
    Vast emulator has no limit unless built with one in Python."""
    try:
        key = shared.resolve_key(args, KEY_ENV)
    except (shared.KeyProblem, OSError) as exc:
        sys.stderr.write(f"emulator: {exc}\n")
        return 2
    timing = VastTiming.instant() if args.timing == "instant" else VastTiming.realistic()
    emulator = VastEmulator(api_key=key, port=args.port, seed=args.seed, timing=timing,
                            rate_limit=RateLimit(per_second=None))
    return shared.serve(emulator, "VAST_API_URL", args.port, stop)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m launcher.emulator.vast``."""
    return run(build_parser().parse_args(argv))
