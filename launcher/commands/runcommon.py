"""What the run commands (status, logs, teardown, gc, doctor) share: the account, the
provider (``--provider``), the bucket, run ids, confirmation and how times and dollars are
written."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.prompt import Confirm

from launcher.config import (
    CONFIG_DIR_VARIABLE,
    Account,
    config_dir_for,
    configured_provider,
    load_account,
    vast_settings,
    vultr_settings,
)
from launcher.errors import ConfigError
from launcher.operate.access import try_bucket
from launcher.operate.runstatus import Store
from launcher.providers import Capabilities, Provider
from launcher.providers.vast import VastProvider
from launcher.providers.vultr import VultrProvider
from launcher.runner.spec import RUN_ID
from launcher.terminal import make_console
from launcher.vast import VastClient
from launcher.vultr import VultrClient


def run_id(text: str) -> str:
    """argparse type: a run id as the launcher makes them (``<stage>-<yyyymmdd-hhmmss>``)."""
    if not RUN_ID.match(text):
        raise argparse.ArgumentTypeError(f"expected a run id like diffusion-20261129-100000, "
                                         f"not {text!r}")
    return text


BUCKET_PURPOSE = ", for the bucket when B2_BUCKET / B2_S3_ENDPOINT are unset; optional"


def add_config_dir(parser: argparse.ArgumentParser, purpose: str = "") -> None:
    """The ``--config-dir DIR`` flag every command that reads configs shares."""
    parser.add_argument("--config-dir", type=Path, default=None, metavar="DIR",
                        help=f"configuration directory{purpose} (default: "
                        f"${CONFIG_DIR_VARIABLE}, else ./.launcher if it exists, else ./configs)")


def account_for(args: argparse.Namespace) -> Account:
    return load_account(os.environ, getattr(args, "env_file", None))


def config_dir(args: argparse.Namespace) -> Path:
    return config_dir_for(getattr(args, "config_dir", None), os.environ)


def vultr_client(account: Account) -> VultrClient:
    """The one place the run commands make their client (tests put a fast one here)."""
    return VultrClient.from_settings(vultr_settings(account))


def provider_name(args: argparse.Namespace, *, allow_all: bool = False) -> str:
    """``--provider``, else ``provider:`` of the config folder's launcher.yaml, else vultr."""
    chosen = getattr(args, "provider", None)
    if chosen == "all" and not allow_all:
        raise ConfigError("--provider all: only `launcher offers` compares the clouds; name "
                          "one (vultr or vast)")
    return chosen or configured_provider(config_dir(args)) or "vultr"


def vast_client(account: Account) -> VastClient:
    """The one place the commands make a Vast client (tests put a fast one here)."""
    if not account.vast_api_key:
        raise ConfigError(f"VAST_API_KEY is not set (environment or {account.env_file.path}):"
                          " --provider vast needs the Vast.ai API key")
    return VastClient.from_settings(vast_settings(account))


def capabilities_of(name: str) -> Capabilities:
    """What the cloud ``name`` can do, without a client (a class constant)."""
    return (VastProvider if name == "vast" else VultrProvider).capabilities


@contextmanager
def open_provider(account: Account, name: str) -> Iterator[Provider]:
    """The provider ``name`` with the account's key, closed on leaving."""
    provider: Provider = VastProvider(vast_client(account)) if name == "vast" else \
        VultrProvider(vultr_client(account))
    try:
        yield provider
    finally:
        provider.close()


def bucket_for(account: Account, args: argparse.Namespace) -> Store:
    return try_bucket(account, config_dir(args))


class YesNo(Confirm):
    """rich's y/n prompt, also taking ``yes`` and ``no``."""

    def process_response(self, value: str) -> bool:
        word = value.strip().lower()
        return super().process_response({"yes": "y", "no": "n"}.get(word, word))


DELETE_REFUSAL = ("this deletes resources: confirm with --yes (stdin is not a terminal, so "
                  "nobody can be asked)")


def confirm(question: str, yes: bool, *, refusal: str = DELETE_REFUSAL,
            console: Console | None = None) -> bool:
    """The one confirmation prompt of the commands: True with ``--yes``; else ``question`` on
    the terminal (on ``console``, default stderr), where no is the default and Ctrl-D (end of
    input) a no. Without a terminal, a :class:`ConfigError` saying ``refusal`` (exit 2)."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise ConfigError(refusal)
    console = console or make_console(stderr=True)
    try:
        return YesNo.ask(question, console=console, default=False)
    except EOFError:  # Ctrl-D: no answer is a no
        console.print()
        return False


def dollars(usd: float | None) -> str:
    return "?" if usd is None else f"~${usd:,.2f}"


def positive_number(text: str) -> float:
    """argparse type: a finite number above zero (``nan``, ``inf`` and ``-1`` are refused)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number above 0, not {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number above zero."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number above 0, not {text!r}")
    return value


def parse_duration(text: str) -> float:
    """argparse type: ``90``/``90s``, ``30m``, ``12h``, ``2d`` -> seconds (> 0)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    raw = text.strip().lower()
    scale = units.get(raw[-1:])
    number = raw[:-1] if scale else raw
    try:
        value = float(number) * (scale or 1)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a duration like 90s, 30m or 12h, not "
                                         f"{text!r}")
    return value
