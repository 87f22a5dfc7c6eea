"""``launcher plans``: GPU plans with live stock per region."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from launcher.catalog import DEFAULT_REGIONS, PlanStock, gpu_stock, parse_regions
from launcher.vultr import VultrClient

COLUMNS = (("plan", "left"), ("GPU", "left"), ("VRAM GB", "right"), ("kind", "left"),
           ("vCPU", "right"), ("$/month", "right"), ("in stock", "left"))


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("plans", help="list GPU plans and where they are in stock")
    parser.add_argument("--min-vram", type=int, default=0, metavar="GB",
                        help="only plans with at least this much VRAM (default: all)")
    parser.add_argument("--regions", type=parse_regions, default=DEFAULT_REGIONS,
                        metavar="A,B,C", help="regions to check, in priority order "
                        f"(default: {','.join(DEFAULT_REGIONS)})")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    with VultrClient.from_env() as client:
        rows = gpu_stock(client, args.regions, args.min_vram)
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
    else:
        Console().print(_table(rows, args.regions))
    return 0


def _table(rows: list[PlanStock], regions: tuple[str, ...]) -> Table:
    table = Table(title=f"GPU plans (stock in {', '.join(regions)})")
    for name, justify in COLUMNS:
        table.add_column(name, justify=justify)
    for row in rows:
        p = row.plan
        stock = ", ".join(row.in_stock) or "[dim]none[/]"
        table.add_row(escape(p.id), escape(p.gpu_type or "?"), str(p.gpu_vram_gb or "?"),
                      row.kind, str(p.vcpu_count), f"{p.monthly_cost:,.2f}", stock)
    return table
