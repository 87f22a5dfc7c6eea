"""What every part of the hydration bench shares: its constants, its error, progress lines."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[1]  # bench/
BUCKET = "bench"
REGION = "us-east-1"
KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
MB = 1_000_000  # MB/s are decimal megabytes per second; CPU-s/GiB and RSS MiB are binary
POOL_BYTES = 32 * MIB
WRITE_CHUNK = 4 * MIB
SHARD = 250  # small files live in sub-folders of this many, as data sets often do
DEFAULT_TOOLS = ("s5cmd", "s5cmd-cp+etag", "rclone", "boto3", "aws")
BASELINE = "aws"
GOALS = {  # ratio to `aws s3 sync`, CPU seconds per GiB (small files only)
    "small": {"x_aws": 3.0, "cpu_per_gib": 4.0},
    "large": {"x_aws": 1.4, "cpu_per_gib": None},
}


class BenchError(Exception):
    """The bench itself could not go on (setup, server, disk space)."""


def tail(text: str, limit: int = 300) -> str:
    """The last ``limit`` characters of ``text``, whitespace folded to single spaces."""
    return " ".join(text.split())[-limit:]


def progress(message: str) -> None:
    """One progress line on stderr (the tables go to stdout)."""
    print(message, file=sys.stderr, flush=True)
