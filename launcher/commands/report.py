"""``launcher report vultr-vs-vast``: the runs on each cloud side by side, from the bucket's
records, and each cloud's cheapest fitting offer now (:mod:`launcher.operate.report`)."""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from launcher.commands import SUMMARIES, runcommon
from launcher.commands.offers import describe, parse_regions
from launcher.commands.runcommon import (
    BUCKET_PURPOSE,
    account_for,
    add_config_dir,
    config_dir,
    positive_int,
    positive_number,
    run_id,
)
from launcher.config import load_stage
from launcher.errors import ConfigError
from launcher.operate.report import RunList, cheapest_offer, gather_runs
from launcher.operate.report_md import MARKER, PROVIDERS, Report, as_dict, render
from launcher.providers.offers import Requirement

DEFAULT_OUT = Path("reports/vultr_vs_vast.md")


def run_ids(text: str) -> list[str]:
    """argparse type: ``ID,ID`` -> distinct run ids."""
    ids = [run_id(part.strip()) for part in text.split(",")]
    if len(set(ids)) != len(ids):
        raise argparse.ArgumentTypeError(f"run ids are repeated in {text!r}")
    return ids


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("report", help=SUMMARIES["report"],
                            description="Reports written from the runs' records and the "
                            "clouds' live offers.")
    which = parser.add_subparsers(dest="report", metavar="REPORT", required=True)
    vs = which.add_parser(
        "vultr-vs-vast", help="runs per cloud side by side, and each cloud's cheapest offer",
        description="Write a Markdown page comparing the runs on Vultr and on Vast.ai (GPU, "
        "$/h, launch to training, throughput, wall time, cost, outcome: read from each "
        "run's manifest, status and logs in the bucket) and each cloud's cheapest fitting "
        "offer now. A figure no record holds is written \"not recorded\".")
    vs.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="PATH",
                    help=f"where to write the page (default: {DEFAULT_OUT}); a file this "
                    "command did not write is not overwritten without --force")
    vs.add_argument("--force", action="store_true",
                    help="overwrite --out even if this command did not write it")
    vs.add_argument("--runs", type=run_ids, default=None, metavar="ID,ID",
                    help="these runs only (default: every run with a manifest in the bucket, "
                    "newest 200)")
    vs.add_argument("--stage", help="the live offers for this stage's needs (default: the "
                    "stage most runs used, when it is configured here)")
    vs.add_argument("--min-vram", type=positive_number, default=None, metavar="GB",
                    help="live offers: VRAM per GPU, at least")
    vs.add_argument("--gpu-count", type=positive_int, default=None, metavar="N",
                    help="live offers: GPUs per instance")
    vs.add_argument("--regions", type=parse_regions, default=None, metavar="A,B,C",
                    help="live offers: regions (Vultr ids; Vast takes their countries)")
    vs.add_argument("--json", action="store_true",
                    help="also print the figures as JSON on stdout")
    add_config_dir(vs, BUCKET_PURPOSE)
    vs.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_out(args.out, args.force)
    account = account_for(args)
    runs = gather_runs(runcommon.bucket_for(account, args), args.runs)
    requirement, basis = requirement_for(args, runs)
    offers = tuple(cheapest_offer(name, lambda n: runcommon.open_provider(account, n),
                                  requirement) for name in PROVIDERS)
    report = Report(runs, offers, describe(requirement), basis, time.time())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(report), encoding="utf-8")
    if args.json:
        print(json.dumps(as_dict(report), indent=2))
    else:
        print(f"wrote {args.out}: {len(runs.runs)} run(s)"
              + (f" ({runs.problem})" if runs.problem else ""))
    return 0


def check_out(path: Path, force: bool) -> None:
    """Refuse to replace a file this command did not write (its first line is the marker)."""
    if force or not path.exists():
        return
    if not path.is_file():
        raise ConfigError(f"--out {path} is not a regular file; name a file")
    with open(path, encoding="utf-8", errors="replace") as handle:
        first = handle.readline().rstrip("\n")
    if first != MARKER:
        raise ConfigError(f"{path} exists and was not written by this command: not "
                          "overwriting it", hint="pass --force, or another --out")


def requirement_for(args: argparse.Namespace, runs: RunList) -> tuple[Requirement, str]:
    """The live offers' requirement and, in words, where it came from."""
    flags = {"min_vram_gb": args.min_vram, "gpu_count": args.gpu_count,
             "regions": args.regions}
    given = {k: v for k, v in flags.items() if v is not None}
    if args.stage:
        return (Requirement.from_config(load_stage(config_dir(args), args.stage), **flags),
                f"stage {args.stage}")
    if given:
        return Requirement(**given), "the flags given"
    used = Counter(r.stage for r in runs.runs if r.stage).most_common(1)
    if not used:
        return Requirement(), "no stage given and no run names one: any whole GPU"
    stage = used[0][0]
    try:
        config = load_stage(config_dir(args), stage)
    except ConfigError:
        return Requirement(), (f"stage {stage}, the one most runs used, is not configured "
                               "here: any whole GPU")
    return Requirement.from_config(config), f"stage {stage}, the one most runs used"

