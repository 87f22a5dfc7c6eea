"""One repetition of one data set: every tool's cold sync in turn, one set of changes in the
bucket, every tool's incremental sync in turn, each checked file by file."""

from __future__ import annotations

import os
import random
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .candidates import Candidate
from .checks import StatKey, evict, record, stat_key, verify, walk
from .datasets import Admin, Change, DataSet, Filler, plan_changes
from .measure import Ctx
from .shared import MB, progress


@dataclass
class Tree:
    """One candidate's local copy during a round."""

    tool: Candidate
    dest: Path
    state: Path
    cache: dict[str, tuple[StatKey, str]] = field(default_factory=dict)
    before: dict[str, StatKey] = field(default_factory=dict)


def run_round(ctx: Ctx, admin: Admin, tools: list[Candidate], ds: DataSet, filler: Filler,
              rng: random.Random, rep: int, reps: int) -> list[dict]:
    """One repetition of one data set: every tool's cold sync in turn, one set of changes
    in the bucket, every tool's incremental sync in turn; the local trees are removed."""
    entries: list[dict] = []
    trees: list[Tree] = []
    label = f"[rep {rep}/{reps}] {ds.name:5}"
    total = ds.total
    try:
        for tool in tools:
            entry: dict = {"rep": rep, "dataset": ds.name, "tool": tool.name, "bytes": total}
            entries.append(entry)
            tree = cold_pass(ctx, tool, ds, entry, label)
            if tree is not None:
                trees.append(tree)
        if trees:
            changes = change_bucket(ctx, admin, ds, filler, rng, trees)
            by_tool = {e["tool"]: e for e in entries}
            for tree in trees:
                incremental_pass(ctx, tree, ds, changes, by_tool[tree.tool.name], label)
        scrub_errors(ctx, entries)
        return entries
    finally:
        for tree in trees:
            shutil.rmtree(tree.dest, ignore_errors=True)
        for tool in tools:
            shutil.rmtree(ctx.work / f"dest-{tool.name}", ignore_errors=True)


def cold_pass(ctx: Ctx, tool: Candidate, ds: DataSet, entry: dict, label: str) -> Tree | None:
    """``tool``'s sync into an empty folder, checked and recorded in ``entry``; its tree for
    the incremental pass (None when the tool is missing or its sync failed)."""
    why = tool.missing(ctx)
    if why:
        entry["missing"] = why
        return None
    tree = Tree(tool, ctx.work / f"dest-{tool.name}", ctx.work / f"state-{tool.name}")
    shutil.rmtree(tree.dest, ignore_errors=True)
    tree.state.unlink(missing_ok=True)
    tree.dest.mkdir(parents=True)
    os.sync()  # the previous tool's writes reach the disk outside any measurement
    result = tool.sync(ctx, ds, tree.dest, tree.state)
    cold = record(result, verify(ds, tree.dest, tree.cache, {}, ctx.pool), ds.count)
    evict(tree.dest)
    entry["cold"] = asdict(cold) | {"correct": cold.correct}
    entry["incremental"] = None
    speed = entry["bytes"] / result.wall / MB if result.wall else 0.0
    progress(f"{label} {tool.name:16} cold {result.wall:6.2f} s "
             f"{speed:6.0f} MB/s cpu {result.cpu:5.2f} s rss {cold.rss_mib:4.0f} MiB"
             + ("" if cold.correct else
                f" INCORRECT {ctx.scrub(cold.error)[:80]}"))
    return None if result.error else tree


def incremental_pass(ctx: Ctx, tree: Tree, ds: DataSet, changes: list[Change], entry: dict,
                     label: str) -> None:
    """The tool's sync of its tree after ``changes``, checked and recorded in ``entry``."""
    os.sync()
    result = tree.tool.sync(ctx, ds, tree.dest, tree.state)
    check = verify(ds, tree.dest, tree.cache, tree.before, ctx.pool)
    incr = record(result, check, len(changes), changes)
    entry["incremental"] = asdict(incr) | {"correct": incr.correct}
    entry["changes"] = dict(Counter(c.kind for c in changes))
    missed = ", ".join(f"{n} {k}" for k, n in incr.missed.items())
    progress(f"{label} {tree.tool.name:16} incr "
             f"{result.wall:6.2f} s fetched {incr.fetched}/{len(changes)} "
             + ("ok" if incr.correct else f"INCORRECT (missed {missed or '?'})"))


def scrub_errors(ctx: Ctx, entries: list[dict]) -> None:
    """Take the keys out of every recorded error text."""
    for entry in entries:
        for part in (entry.get("cold"), entry.get("incremental")):
            if part and part["error"]:
                part["error"] = ctx.scrub(part["error"])


def wait_past(moment: float, deadline_s: float = 5.0) -> None:
    """Return once the clock is past ``moment`` (bounded): a rewrite after that lands in a
    later whole second than every local mtime, as S3's LastModified counts them."""
    limit = time.monotonic() + deadline_s
    while time.time() <= moment and time.monotonic() < limit:
        time.sleep(min(0.05, max(0.0, moment - time.time()) + 0.001))


def change_bucket(ctx: Ctx, admin: Admin, ds: DataSet, filler: Filler, rng: random.Random,
                  trees: list[Tree]) -> list[Change]:
    """Change ``ds.changed`` objects once for every tree, after every local mtime's second;
    give the trees' copies of the "hidden" ones the new object's LastModified as mtime."""
    newest = max((st.st_mtime for tree in trees for st in walk(tree.dest).values()),
                 default=0.0)
    wait_past(newest + 1.0)
    changes = plan_changes(ds, rng)
    for change in changes:
        size = ds.sizes[change.rel]
        if change.kind == "resized":  # shrink to 1/8, or grow back: cheap for large files
            size = ds.size if size != ds.size else max(1, ds.size // 8)
        admin.put(ds, filler, change.rel, size)
    stamps = admin.listing(ds)
    for tree in trees:
        for change in changes:
            path = tree.dest / change.rel
            if change.kind == "hidden" and path.exists():
                stamp = int(stamps[change.rel][1] * 1e9)
                os.utime(path, ns=(stamp, stamp))
        tree.before = {rel: stat_key(st) for rel, st in walk(tree.dest).items()}
        for rel, key in tree.before.items():  # re-stamped files keep their (stale) content
            if rel in tree.cache:
                tree.cache[rel] = (key, tree.cache[rel][1])
    return changes

