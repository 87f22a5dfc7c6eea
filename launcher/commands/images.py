"""``launcher images``: the baked snapshots, newest first, and which one a launch boots."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from launcher.commands import SUMMARIES, runcommon
from launcher.commands.runcommon import account_for, add_config_dir, config_dir
from launcher.errors import ConfigError
from launcher.operate.access import stage_for
from launcher.provision.images import BakedImage, BakeRecord, ImageListing, last_bake, list_images
from launcher.tables import Col, FitTable, print_table
from launcher.terminal import escape, make_console

PICK = "▶"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "images", help=SUMMARIES["images"],
        description="List the snapshots `make bake-image` made (described with the stage's "
        "image.snapshot_prefix), newest first, with the OS, driver branch, CUDA version and "
        "bake date read from each description, its state and size, and mark the one "
        "`image: latest` resolves to and the one the stage boots (the rule `launcher run` "
        "uses). Exit 1 when the stage has no snapshot to boot. --manifest FILE prints the "
        "last bake recorded in packer's manifest instead, without calling Vultr.")
    parser.add_argument("--stage", default=None,
                        help="use this stage's image settings (default: configs/launcher.yaml's)")
    add_config_dir(parser)
    parser.add_argument("--all", action="store_true",
                        help="also list snapshots whose description lacks the prefix")
    parser.add_argument("--manifest", type=Path, default=None, metavar="FILE",
                        help="print the last bake from packer's manifest (no API call)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.manifest is not None:
        return show_manifest(last_bake(args.manifest), as_json=args.json)
    stage = stage_for(config_dir(args), args.stage)
    account = account_for(args)
    if not account.vultr_key:
        raise ConfigError(f"VULTR_KEY is not set (environment or {account.env_file.path}): "
                          "listing snapshots needs the Vultr key")
    with runcommon.open_provider(account, runcommon.provider_name(args)) as provider:
        listing = list_images(provider, stage.image, include_all=args.all)
    if args.json:
        print(json.dumps(listing.as_dict(), indent=2))
    else:
        show(make_console(), listing, stage.name)
    return 0 if listing.selected else 1


def show_manifest(record: BakeRecord, *, as_json: bool) -> int:
    if as_json:
        print(json.dumps(record.as_dict(), indent=2))
        return 0
    print(f"snapshot {record.snapshot_id}")
    print(f"description {record.description or '(not recorded)'}")
    print("`launcher images` shows whether `image: latest` now resolves to it")
    return 0


def show(console: Console, listing: ImageListing, stage_name: str) -> None:
    prefix = listing.image.snapshot_prefix
    if listing.images:
        print_table(console, table(listing))
    else:
        console.print(f"No snapshot described {escape(prefix)}… in this account.")
    if listing.latest:
        console.print(f"image: latest → [bold]{escape(listing.latest.id)}[/] "
                      f"({escape(listing.latest.description)}): "
                      f"{escape(listing.latest.why)}", soft_wrap=True)
    else:
        console.print(f"image: latest → nothing: {escape(listing.latest_error)}", soft_wrap=True)
    if not listing.image.wants_latest:
        what = (f"[bold]{escape(listing.selected.id)}[/] ({escape(listing.selected.why)})"
                if listing.selected else f"nothing: {escape(listing.selected_error)}")
        console.print(f"{PICK} stage {escape(stage_name)} pins image.snapshot "
                      f"{escape(listing.image.snapshot)} → {what}", soft_wrap=True)


def table(listing: ImageListing) -> FitTable:
    only_baked = all(i.baked for i in listing.images)
    # OS, driver, CUDA and baked are read from the description: the first to go when narrow.
    out = FitTable(f"snapshots described {escape(listing.image.snapshot_prefix)}… (newest "
                   "first)" if only_baked else "snapshots (newest first)",
                   [Col(""), Col("id"), Col("description"),
                    *(Col(name, optional=True) for name in ("OS", "driver", "CUDA", "baked")),
                    Col("status"), Col("GiB", "right"), Col("~$/month", "right"),
                    Col("note")])
    for image in listing.images:
        out.add_row(*_cells(image))
    return out


def _cells(image: BakedImage) -> list[str]:
    s, name = image.snapshot, image.name
    fields = [name.os, name.driver, name.cuda, name.date] if name else ["?"] * 4
    return [PICK if image.selected else "", escape(s.id), escape(s.description),
            *map(escape, fields), escape(s.status), f"{image.size_gib:,.1f}",
            f"{image.usd_per_month:,.2f}", _note(image)]


def _note(image: BakedImage) -> str:
    if image.latest:
        return "latest"
    if not image.baked:
        return "not a launcher image (no prefix)"
    if image.snapshot.status != "complete":
        return f"{image.snapshot.status}: not used until complete"
    if image.name is None:
        return "description not <os>-<driver>-<cuda>-<date>"
    return ""
