"""``python -m launcher.emulator``: serve the emulator on 127.0.0.1 until SIGTERM/SIGINT.

Prints exactly one line, ``VULTR_API_URL=http://127.0.0.1:PORT/v2``, and never the key. The
key is the value of the environment variable named by ``--key-env`` (default ``VULTR_KEY``);
when that is unset, a random key is generated and written (mode 0600) to ``--api-key-file``.
``build_parser`` and ``run`` are reusable so the main CLI can mount this as a subcommand.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from launcher.emulator.ratelimit import RateLimit
from launcher.emulator.server import Emulator, LoopbackEmulator
from launcher.emulator.timing import Timing


class KeyProblem(Exception):
    """No usable key: the message says what to set; it never contains a key."""


def build_parser(parser: argparse.ArgumentParser | None = None,
                 key_env: str | None = "VULTR_KEY") -> argparse.ArgumentParser:
    """Add the emulator's options to ``parser`` (or a new one) and return it. ``key_env``
    None leaves ``--key-env`` unset, for the runner to default per provider."""
    parser = parser or argparse.ArgumentParser(
        prog="python -m launcher.emulator",
        description="Serve a loopback Vultr API emulator on 127.0.0.1.")
    parser.add_argument("--port", type=port_number, default=0,
                        help="port to bind, 0 to 65535 (0: any free port)")
    default_text = key_env or "VULTR_KEY; VAST_API_KEY with --provider vast"
    parser.add_argument("--key-env", default=key_env, metavar="VAR",
                        help=f"environment variable holding the API key (default {default_text})")
    parser.add_argument("--api-key-file", type=Path, metavar="FILE",
                        help="when VAR is unset: write a generated key here (mode 0600)")
    parser.add_argument("--timing", choices=("instant", "realistic"), default="realistic",
                        help="how fast resources change state (default realistic, ≤ 3 s)")
    parser.add_argument("--no-rate-limit", action="store_true",
                        help="disable the 30 requests/second per-IP limit")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed ids and passwords for a reproducible run")
    return parser


def port_number(text: str) -> int:
    """argparse type: a TCP port, 0 (any free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, not {text!r}")
    return value


def resolve_key(args: argparse.Namespace, default_env: str = "VULTR_KEY") -> str:
    """The key from the environment, or a generated one written to ``--api-key-file``."""
    key_env = args.key_env or default_env
    key = os.environ.get(key_env, "")
    if key:
        return key
    if args.api_key_file is None:
        raise KeyProblem(f"no API key: set {key_env} or pass --api-key-file FILE")
    key = secrets.token_urlsafe(32)
    path = Path(args.api_key_file)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to a file that already existed
    return key


def _install_stop_signals(stop: threading.Event) -> dict[signal.Signals, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[signal.Signals, Any] = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, lambda *_: stop.set())
    return previous


def run(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Serve until SIGTERM/SIGINT (or ``stop`` is set); 0 on a clean stop."""
    try:
        key = resolve_key(args)
    except (KeyProblem, OSError) as exc:
        sys.stderr.write(f"emulator: {exc}\n")
        return 2
    emulator = Emulator(api_key=key, port=args.port, seed=args.seed,
                        timing=Timing.instant() if args.timing == "instant" else Timing.realistic(),
                        rate_limit=RateLimit(per_second=None) if args.no_rate_limit else None)
    return serve(emulator, "VULTR_API_URL", args.port, stop)


def serve(emulator: LoopbackEmulator, variable: str, port: int,
          stop: threading.Event | None = None) -> int:
    """Start ``emulator``, print ``VARIABLE=<url>`` (one line, never the key), serve until
    SIGTERM/SIGINT or ``stop``; 0 on a clean stop, 1 when it cannot listen."""
    stop = stop or threading.Event()
    try:
        url = emulator.start()
    except OSError as exc:
        sys.stderr.write(f"emulator: cannot listen on 127.0.0.1:{port}: {exc.strerror}\n")
        return 1
    previous = _install_stop_signals(stop)
    try:
        sys.stdout.write(f"{variable}={url}\n")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m launcher.emulator``."""
    return run(build_parser().parse_args(argv))
