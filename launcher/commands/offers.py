"""``launcher offers``: which GPU offers fit a stage, in the order ``run`` would try them."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict

from rich.console import Console

from launcher.commands import SUMMARIES, runcommon
from launcher.commands.offers_all import ask_every_cloud, comparison_json, show_comparison
from launcher.commands.runcommon import add_config_dir, positive_int, positive_number
from launcher.config import Account, config_dir_for, load_account, load_stage
from launcher.providers.offers import (
    DEFAULT_REGIONS,
    Offer,
    OfferTable,
    Requirement,
    Verdict,
    candidates,
    pick_reason,
)
from launcher.tables import Col, FitTable, print_table
from launcher.terminal import escape, make_console

CONFIG_DIR_VARIABLE = "LAUNCHER_CONFIG_DIR"
PICK = "▶"
# Reasons about a region, not the plan: they matter only where nothing about the plan does.
REGIONAL = frozenset({"not_offered", "sold_out", "no_nvme_block"})
MOST_GROUPS = 8  # rows of --all's excluded table; --json has every offer
NUMBERS = (Col("VRAM/GPU", "right"), Col("GPUs", "right"), Col("vCPU", "right"),
           Col("RAM GB", "right"), Col("$/h", "right"))


def parse_regions(text: str) -> tuple[str, ...]:
    """``"sjc, sea,lax"`` -> ``("sjc", "sea", "lax")``; duplicates and blanks are refused."""
    regions = tuple(r.strip().lower() for r in text.split(","))
    if not all(regions) or len(set(regions)) != len(regions):
        raise argparse.ArgumentTypeError(f"expected distinct region ids separated by commas, "
                                         f"not {text!r}")
    return regions


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "offers", help=SUMMARIES["offers"],
        description="Judge every GPU plan (cloud and bare metal) in every region against a "
        "stage's needs, with live stock, and mark the offer `launcher run` would pick. "
        "Read-only; Vultr's endpoints need no key, Vast.ai's search needs VAST_API_KEY. "
        "--provider all shows both clouds in one table. Exit code 1 when nothing fits.")
    parser.add_argument("--stage", help="take the needs from this stage (default: any whole "
                        "GPU, in sjc,sea,lax)")
    add_config_dir(parser)
    parser.add_argument("--min-vram", type=positive_number, default=None, metavar="GB",
                        help="VRAM per GPU, at least")
    parser.add_argument("--gpu-count", type=positive_int, default=None, metavar="N",
                        help="GPUs per instance, at least")
    parser.add_argument("--max-gpu-count", type=positive_int, default=None, metavar="N",
                        help="GPUs per instance, at most (default: --gpu-count: a plan with "
                        "more bills for idle GPUs)")
    parser.add_argument("--max-price", type=positive_number, default=None, metavar="USD",
                        help="most dollars per hour for the plan")
    parser.add_argument("--regions", type=parse_regions, default=None, metavar="A,B,C",
                        help="regions in priority order (default: the stage's, or "
                        f"{','.join(DEFAULT_REGIONS)})")
    parser.add_argument("--all", action="store_true", help="also show excluded offers and why")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.set_defaults(handler=run)


def requirement_from_args(args: argparse.Namespace) -> Requirement:
    flags = {"min_vram_gb": args.min_vram, "gpu_count": args.gpu_count,
             "max_gpu_count": args.max_gpu_count,
             "max_price_per_hour": args.max_price, "regions": args.regions}
    if args.stage:
        config_dir = config_dir_for(args.config_dir, os.environ)
        return Requirement.from_config(load_stage(config_dir, args.stage), **flags)
    return Requirement(**{k: v for k, v in flags.items() if v is not None})


def run(args: argparse.Namespace) -> int:
    requirement = requirement_from_args(args)
    account = load_account(os.environ, getattr(args, "env_file", None))  # .env works too
    name = runcommon.provider_name(args, allow_all=True)
    if name == "all":
        return compare(args, account, requirement)
    with runcommon.open_provider(account, name) as provider:
        table = provider.rank_offers(requirement)
    fitting = candidates(table)
    if args.json:
        print(json.dumps(as_json(table, show_all=args.all), indent=2))
    else:
        show(make_console(), table, show_all=args.all)
    return 0 if fitting else 1


def compare(args: argparse.Namespace, account: Account, requirement: Requirement) -> int:
    """``--provider all``: :mod:`launcher.commands.offers_all`."""
    answers = ask_every_cloud(account, requirement)
    if args.json:
        print(json.dumps(comparison_json(answers, as_json, args), indent=2))
    else:
        show_comparison(make_console(), answers)
    return 0 if any(a.fitting for a in answers) else 1


def as_json(table: OfferTable, *, show_all: bool = False) -> dict:
    """The stable ``--json`` shape: requirement, pick, candidates, excluded, closest."""
    fitting = candidates(table)
    pick = None
    if fitting:
        first = fitting[0]
        pick = {"plan": first.plan_id, "region": first.region, "kind": first.kind,
                "price_per_hour": first.price_per_hour, "why": pick_reason(table)}
    return {
        "requirement": {**asdict(table.requirement),
                        "regions": list(table.requirement.regions)},
        "pick": pick,
        "candidates": [o.as_dict() for o in fitting],
        "excluded": [v.as_dict() for v in table.excluded()] if show_all else [],
        "closest": [] if fitting else [v.as_dict() for v in table.closest()],
    }


def describe(req: Requirement) -> str:
    model = req.gpu_model or "any GPU"
    price = f", at most ${req.max_price_per_hour:.2f}/h" if req.max_price_per_hour else ""
    slices = "vGPU slices allowed" if req.allow_fractional and req.image_supports_vgpu else \
        "whole GPUs"
    return (f"{req.gpu_count} × {model} with ≥ {req.min_vram_gb:g} GB each ({slices}{price}), "
            f"in {' → '.join(req.regions)}")


def show(console: Console, table: OfferTable, *, show_all: bool) -> None:
    fitting = candidates(table)
    if not fitting:
        console.print(f"[bold red]No offer fits[/] {escape(describe(table.requirement))}.")
        print_table(console, _excluded_table("closest offers, and why they do not fit",
                                             {v.offer.plan_id: [v] for v in table.closest()}))
        return
    print_table(console, _fitting_table(table, fitting))
    first = fitting[0]
    console.print(f"{PICK} run would pick [bold]{escape(first.plan_id)}[/] in "
                  f"[bold]{first.region}[/]: {escape(pick_reason(table))}", soft_wrap=True)
    if show_all:
        excluded, left_out = _excluded_by_reason(table)
        print_table(console, excluded)
        more = f"{left_out} more excluded plan(s), and " if left_out else ""
        console.print(f"{more}each excluded offer with its GPUs, price and reasons: "
                      "`launcher offers --all --json`", soft_wrap=True)


def _fitting_table(table: OfferTable, fitting: list[Offer]) -> FitTable:
    out = FitTable(f"GPU offers for {escape(describe(table.requirement))}",
                   [Col(""), Col("plan"), Col("GPU"), *NUMBERS, Col("in stock")])
    regions: dict[str, list[str]] = {}
    for offer in fitting:
        regions.setdefault(offer.plan_id, []).append(offer.region)
    first = fitting[0]
    rows = sorted({o.plan_id: o for o in reversed(fitting)}.values(),
                  key=lambda o: (o.price_per_hour, o.plan_id))
    for o in rows:
        marker = PICK if o.plan_id == first.plan_id else ""
        stock = ", ".join(f"[bold]{r}[/]" if (o.plan_id, r) == (first.plan_id, first.region)
                          else r for r in table.requirement.regions if r in regions[o.plan_id])
        out.add_row(marker, *_cells(o), stock)
    return out


def _cells(o: Offer) -> list[str]:
    gpu = f"{o.gpu_model or o.gpu_type or '?'} ({o.label})"
    per_gpu = f"{o.vram_per_gpu_gb:g}" if o.vram_per_gpu_gb is not None else "?"
    return [escape(o.plan_id), escape(gpu), per_gpu, str(o.gpu_count or "?"), str(o.vcpu),
            f"{o.ram_mb / 1024:g}", f"{o.price_per_hour:,.2f}"]


def _excluded_table(title: str, plans: dict[str, list[Verdict]]) -> FitTable:
    out = FitTable(title, [Col("plan"), Col("GPU"), *NUMBERS, Col("why not")])
    for verdicts in plans.values():
        out.add_row(*_cells(verdicts[0].offer), escape(_reasons(verdicts)))
    return out


def _excluded_by_reason(table: OfferTable) -> tuple[FitTable, int]:
    """``--all``: the plans with an excluded offer, grouped by why, fewest reasons first (then
    cheapest), at most ``MOST_GROUPS`` rows; also the number of plans left out. A plan excluded
    for what it is shows only that; regional reasons (not offered, sold out) where they are all
    there is. Every offer with all its reasons: ``--json``."""
    groups: dict[str, list[str]] = {}
    for plan, verdicts in table.by_plan().items():
        excluded = [v for v in verdicts if not v.ok]
        own = [r for v in excluded for r in v.reasons if r.code not in REGIONAL]
        if excluded:
            why = "\n".join(dict.fromkeys(r.text for r in own)) or _reasons(excluded)
            groups.setdefault(why, []).append(plan)
    closest = sorted(groups.items(), key=lambda group: group[0].count("\n"))  # stable
    out = FitTable("excluded offers, by reason", [Col("why not"), Col("plans")], lines=True)
    for why, plans in closest[:MOST_GROUPS]:
        out.add_row(escape(why), escape(", ".join(plans)))
    return out, sum(len(plans) for _, plans in closest[MOST_GROUPS:])


def _reasons(verdicts: list[Verdict]) -> str:
    """Each distinct reason once (region-level reasons name their region)."""
    texts = dict.fromkeys(r.text for v in verdicts for r in v.reasons)
    return "\n".join(texts)
