"""``launcher offers --provider all``: both clouds' fitting offers for one requirement in one
table, each cloud's pick marked, with $/h per GPU so a 1-GPU and an 8-GPU machine compare.

A cloud that cannot be asked (its key unset, its API failing) is named with why, and the
others are still shown: a comparison with one side missing says so, it does not fail."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from rich.console import Console

from launcher.commands import runcommon
from launcher.config import Account
from launcher.errors import LauncherError
from launcher.providers import PROVIDER_NAMES
from launcher.providers.offers import Offer, OfferTable, Requirement, candidates, pick_reason
from launcher.tables import Col, FitTable, print_table
from launcher.terminal import escape

ROWS_PER_CLOUD = 8  # the cheapest fitting offers of each cloud; --json has every one


@dataclass(frozen=True)
class CloudOffers:
    """One cloud's answer: its table, or why it could not be asked."""

    name: str
    table: OfferTable | None = None
    problem: str = ""

    @property
    def fitting(self) -> list[Offer]:
        return candidates(self.table) if self.table is not None else []


def ask_every_cloud(account: Account, requirement: Requirement) -> list[CloudOffers]:
    answers = []
    for name in PROVIDER_NAMES:
        try:
            with runcommon.open_provider(account, name) as provider:
                answers.append(CloudOffers(name, provider.rank_offers(requirement)))
        except LauncherError as exc:
            answers.append(CloudOffers(name, problem=str(exc)))
    return answers


def per_gpu(offer: Offer) -> float | None:
    return offer.price_per_hour / offer.gpu_count if offer.gpu_count else None


def comparison_table(answers: list[CloudOffers]) -> FitTable:
    table = FitTable("GPU offers of both clouds that fit, cheapest first per cloud",
                     [Col("cloud"), Col(""), Col("plan / offer"), Col("GPU"),
                      Col("where"), Col("VRAM/GPU", "right"), Col("GPUs", "right"),
                      Col("$/h", "right"), Col("$/h per GPU", "right")])
    for answer in answers:
        fitting = answer.fitting
        pick = fitting[0] if fitting else None
        cheapest = sorted(fitting, key=lambda o: (o.price_per_hour, o.plan_id, o.region))
        for offer in cheapest[:ROWS_PER_CLOUD]:
            marker = "▶" if offer == pick else ""
            each = per_gpu(offer)
            table.add_row(answer.name, marker, escape(offer.plan_id),
                          escape(offer.gpu_model or offer.gpu_type or "?"), offer.region,
                          f"{offer.vram_per_gpu_gb or 0:g}", str(offer.gpu_count or "?"),
                          f"{offer.price_per_hour:,.2f}",
                          f"{each:,.2f}" if each is not None else "?")
    return table


def show_comparison(console: Console, answers: list[CloudOffers]) -> None:
    print_table(console, comparison_table(answers))
    for answer in answers:
        if answer.problem:
            console.print(f"[yellow]{answer.name}: not asked[/]: {escape(answer.problem)}",
                          soft_wrap=True)
        elif answer.table is not None and answer.fitting:
            first = answer.fitting[0]
            console.print(f"▶ {answer.name}: run would pick [bold]{escape(first.plan_id)}[/] "
                          f"in {first.region}: {escape(pick_reason(answer.table))}",
                          soft_wrap=True)
        else:
            console.print(f"{answer.name}: no offer fits", soft_wrap=True)


def comparison_json(answers: list[CloudOffers], as_json, args: argparse.Namespace) -> dict:
    """``{"clouds": {name: <the one-cloud --json shape> | {"problem": text}}}``."""
    return {"clouds": {a.name: as_json(a.table, show_all=args.all) if a.table is not None
                       else {"problem": a.problem} for a in answers}}
