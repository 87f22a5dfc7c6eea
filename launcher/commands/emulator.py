"""``launcher emulator``: serve a loopback provider emulator (Vultr by default, or Vast)."""

from __future__ import annotations

import argparse
import threading

from launcher.commands import SUMMARIES
from launcher.emulator import cli as emulator_cli
from launcher.emulator.vast import cli as vast_cli


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "emulator", help=SUMMARIES["emulator"],
        description="Serve a stateful provider API emulator on 127.0.0.1 until SIGTERM/SIGINT. "
        "Prints VULTR_API_URL=... (or VAST_API_URL=... with --provider vast); export it (and "
        "the key) to point launcher at it. Faults (and Vultr stock / Vast offers) are set over "
        "HTTP at /_emulator/... with the same key: the emulator's own endpoint, not the "
        "provider's API (see docs/emulator.md).",
    )
    parser.add_argument("--provider", choices=("vultr", "vast"), default="vultr",
                        help="which API to emulate (default vultr)")
    emulator_cli.build_parser(parser, key_env=None)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Serve the chosen provider's emulator."""
    if getattr(args, "provider", "vultr") == "vast":
        return vast_cli.run(args, stop)
    return emulator_cli.run(args, stop)
