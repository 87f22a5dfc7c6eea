"""``launcher emulator``: serve the loopback Vultr emulator (as ``python -m launcher.emulator``)."""

from __future__ import annotations

import argparse

from launcher.commands import SUMMARIES
from launcher.emulator import cli as emulator_cli


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "emulator", help=SUMMARIES["emulator"],
        description="Serve a stateful Vultr API emulator on 127.0.0.1 until SIGTERM/SIGINT. "
        "Prints VULTR_API_URL=...; export it (and the key) to point launcher at it. "
        "Faults and stock are set over HTTP at /_emulator/faults and /_emulator/stock beside "
        "/v2, with the same key: the emulator's own endpoint, not Vultr's API (see "
        "docs/emulator.md).",
    )
    emulator_cli.build_parser(parser)
    parser.set_defaults(handler=emulator_cli.run)
