"""The report: medians per tool and data set, ratios, the goals, the verdict, and
the tables printed on stdout."""

from __future__ import annotations

import os
import platform
import statistics

from .datasets import DataSet
from .shared import BASELINE, GIB, GOALS, MB


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(runs: list[dict], tools: list[str], ds: DataSet, disk: list[float]) -> dict:
    """Medians per tool for one data set, with ratios and the incremental verdict."""
    rows = {name: tool_row([r for r in runs if r["tool"] == name and r["dataset"] == ds.name])
            for name in tools}
    disk_mb_s = median(disk)
    base = rows.get(BASELINE, {}).get("mb_s")
    for row in rows.values():
        if "missing" in row or row["mb_s"] is None:
            continue
        row["x_aws"] = row["mb_s"] / base if base else None
        row["x_disk"] = row["mb_s"] / disk_mb_s if disk_mb_s else None
    return {"dataset": ds.name, "describe": ds.describe(), "bytes": ds.count * ds.size,
            "disk_mb_s": disk_mb_s, "disk_range": [min(disk), max(disk)] if disk else None,
            "rows": rows, "verdict": verdict(ds.name, rows)}


def tool_row(mine: list[dict]) -> dict:
    """One tool's medians over its repetitions of one data set (``missing`` when it did
    not run)."""
    if not mine or "missing" in mine[0]:
        return {"missing": mine[0]["missing"] if mine else "not run"}
    colds = [r["cold"] for r in mine]
    incrs = [r["incremental"] for r in mine if r["incremental"]]
    good = [(r["bytes"] / GIB, c) for r, c in zip(mine, colds, strict=True) if c["correct"]]
    row = {
        "reps": len(mine),
        "cold_ok": len(good) == len(colds),
        "cold_errors": sorted({c["error"] or "wrong files" for c in colds
                               if not c["correct"]}),
        "mb_s": median([gib * GIB / c["wall"] / MB for gib, c in good]),
        "cpu_per_gib": median([c["cpu"] / gib for gib, c in good]),
        "server_cpu_per_gib": median([c["server_cpu"] / gib for gib, c in good]),
        "rss_mib": median([c["rss_mib"] for _, c in good]),
        "incr_s": median([i["wall"] for i in incrs if not i["error"]]),
        "incr_cpu_s": median([i["cpu"] for i in incrs if not i["error"]]),
        "incr_fetched": median([i["touched"] if i["fetched"] is None else i["fetched"]
                                for i in incrs]),
        "incr_touched": median([i["touched"] for i in incrs]),
        "incr_expected": incrs[0]["expected_fetch"] if incrs else None,
        "incr_correct": bool(incrs) and all(i["correct"] for i in incrs),
        "incr_missed": {},
        "incr_errors": sorted({i["error"] for i in incrs if i["error"]}),
    }
    for i in incrs:
        for kind, n in i["missed"].items():
            row["incr_missed"][kind] = max(row["incr_missed"].get(kind, 0), n)
    fetched = row["incr_fetched"]
    row["incr_exact"] = row["incr_correct"] and (fetched == row["incr_expected"])
    return row


def incremental_text(row: dict) -> str:
    if row["incr_expected"] is None:
        return "not run (the cold sync failed)"
    if row["incr_errors"]:
        return f"ERROR: {row['incr_errors'][0][:60]}"
    expected = row["incr_expected"]
    fetched = row["incr_fetched"]
    count = f"{fmt(fetched, 0)}/{expected}" if fetched is not None else f"?/{expected}"
    if not row["incr_correct"]:
        missed = ", ".join(f"{n} {kind}" for kind, n in sorted(row["incr_missed"].items()))
        return f"INCORRECT: missed {missed or 'files'} (fetched {count})"
    if not row["incr_exact"]:
        return f"correct, fetched {count}"
    return f"exact ({count})"


def goal_failures(name: str, row: dict) -> list[str]:
    goal = GOALS.get(name, {})
    fails = []
    if not row["cold_ok"]:
        fails.append("cold sync wrong")
    if row.get("x_aws") is None:
        fails.append("no aws baseline")
    elif row["x_aws"] < goal.get("x_aws", 0):
        fails.append(f"{row['x_aws']:.2f}× aws < {goal['x_aws']}×")
    cpu_goal = goal.get("cpu_per_gib")
    if cpu_goal is not None and row["cpu_per_gib"] is not None and row["cpu_per_gib"] > cpu_goal:
        fails.append(f"{row['cpu_per_gib']:.1f} CPU-s/GiB > {cpu_goal}")
    if not row["incr_correct"]:
        fails.append("incremental INCORRECT")
    elif not row["incr_exact"]:
        fails.append("incremental over-fetches")
    return fails


def verdict(name: str, rows: dict[str, dict]) -> str:
    ran = {t: r for t, r in rows.items() if "missing" not in r and r["mb_s"] is not None}
    if not ran:
        return f"{name}: no candidate ran"
    fastest = sorted(ran, key=lambda t: -ran[t]["mb_s"])
    passing = [t for t in fastest if not goal_failures(name, ran[t])]
    if passing:
        best = ran[passing[0]]
        cpu = f", {best['cpu_per_gib']:.1f} CPU-s/GiB" if best["cpu_per_gib"] is not None else ""
        others = f" (also: {', '.join(passing[1:])})" if passing[1:] else ""
        return (f"{name}: PASS — {passing[0]} meets every goal: {best['mb_s']:.0f} MB/s = "
                f"{best['x_aws']:.2f}× aws{cpu}, incremental exact{others}")
    top = fastest[0]
    return (f"{name}: FAIL — no candidate meets every goal; fastest {top}: "
            + "; ".join(goal_failures(name, ran[top])))


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def render(summary: dict, reps: int) -> str:
    lines = [f"### {summary['dataset']}: {summary['describe']}  ({reps} repetitions, medians)",
             ""]
    lo, hi = summary["disk_range"] or (None, None)
    lines.append(f"disk write limit (dd bs=1M conv=fdatasync): {fmt(summary['disk_mb_s'], 0)} "
                 f"MB/s (range {fmt(lo, 0)}–{fmt(hi, 0)})")
    lines.append("")
    lines.append("| tool | cold MB/s | × aws | × disk | CPU-s/GiB | server CPU-s/GiB | "
                 "peak RSS MiB | incr s | incremental (fetched/changed) |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, row in summary["rows"].items():
        if "missing" in row:
            lines.append(f"| {name} | {row['missing']} | | | | | | | |")
            continue
        cold = fmt(row["mb_s"], 0) if row["cold_ok"] else \
            f"INCORRECT cold ({'; '.join(row['cold_errors'])[:60]})"
        lines.append(
            f"| {name} | {cold} | {fmt(row.get('x_aws'), 2)} | {fmt(row.get('x_disk'), 2)} | "
            f"{fmt(row['cpu_per_gib'])} | {fmt(row['server_cpu_per_gib'])} | "
            f"{fmt(row['rss_mib'], 0)} | {fmt(row['incr_s'], 2)} | {incremental_text(row)} |")
    lines += ["", f"verdict — {summary['verdict']}", ""]
    return "\n".join(lines)


def print_tables(versions: dict[str, str], summaries: list[dict], reps: int,
                 load_start: tuple[float, float, float],
                 load_end: tuple[float, float, float]) -> None:
    """The machine, the tools' versions, then one table and verdict per data set."""
    print(f"machine: {os.cpu_count()} CPUs, {platform.platform()}, load average "
          f"{load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end; server: SeaweedFS "
          f"`weed mini` on 127.0.0.1; MB/s = 10^6 bytes/s")
    print("tools: " + "; ".join(f"{n}: {v}" for n, v in versions.items()))
    print()
    for summary in summaries:
        print(render(summary, reps))
