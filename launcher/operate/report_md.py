"""The Vultr-versus-Vast report as Markdown (and as JSON): a table of runs per provider, a
comparison, and the live offers. A figure that is None is written "not recorded"."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from launcher.operate.report import OfferFigures, RunFigures, RunList
from launcher.timefmt import duration

MARKER = "<!-- written by `launcher report vultr-vs-vast`; rerun it to refresh -->"
NOT_RECORDED = "not recorded"
PROVIDERS = ("vultr", "vast")
RUN_COLUMNS = ("run", "stage", "GPU", "region", "$/h", "launch → train", "throughput",
               "trainer log", "wall time", "cost", "outcome")


@dataclass(frozen=True)
class Report:
    """What the page shows: the runs, the offers for ``requirement`` (in words) and where
    that requirement came from (``basis``), and when it was made (epoch seconds)."""

    runs: RunList
    offers: tuple[OfferFigures, ...]
    requirement: str
    basis: str
    made: float


def render(report: Report) -> str:
    """The whole page."""
    made = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(report.made))
    lines = [MARKER, "", "# Vultr vs Vast.ai", "",
             f"Made {made} from the runs' records in the bucket and the clouds' live offers. "
             f"A figure no record holds says \"{NOT_RECORDED}\".", ""]
    lines += runs_section(report.runs)
    lines += comparison_section(report.runs)
    lines += offers_section(report)
    lines += notes_section()
    return "\n".join(lines).rstrip() + "\n"


def runs_section(runs: RunList) -> list[str]:
    lines = ["## Runs", ""]
    if runs.problem:
        return lines + [f"The runs could not be read: {_cell(runs.problem)}.", ""]
    count = f"{len(runs.runs)} run(s)"
    if runs.capped:
        count += f", the newest {len(runs.runs)} of the {runs.found} in the bucket"
    lines += [f"{count}.", ""]
    for provider in _providers(runs.runs):
        own = [r for r in runs.runs if (r.provider or "") == provider]
        title = {"vultr": "Vultr", "vast": "Vast.ai"}.get(provider, provider) or \
            f"provider {NOT_RECORDED}"
        lines += [f"### {title}", "", *table(RUN_COLUMNS, [run_row(r) for r in own]), ""]
        lines += [f"- {r.run_id}: {_cell(p)}" for r in own for p in r.problems]
        if any(r.problems for r in own):
            lines.append("")
    return lines


def _providers(runs: tuple[RunFigures, ...]) -> list[str]:
    seen = {r.provider for r in runs}
    return [p for p in PROVIDERS if p in seen] + sorted(seen - set(PROVIDERS))


def run_row(run: RunFigures) -> list[str]:
    gpu = f"{run.gpu_count} × {run.gpu_type}" if run.gpu_count and run.gpu_type else \
        (run.gpu_type or NOT_RECORDED)
    return [run.run_id, run.stage or NOT_RECORDED, gpu, run.region or NOT_RECORDED,
            _usd(run.usd_per_hour, 3), _span(run.launch_to_train_s), _throughput(run),
            run.throughput.parser, _span(run.wall_s), _cost(run), outcome(run)]


def _throughput(run: RunFigures) -> str:
    summary = run.throughput.summary()
    if summary:
        return summary
    why = run.throughput.missing
    return f"{NOT_RECORDED} ({why})" if why else NOT_RECORDED


def _cost(run: RunFigures) -> str:
    cost = run.cost_usd
    if cost is not None:
        return f"≥ ${cost:,.2f} ({run.billed_hours:.2f} h)"
    missing = [what for what, value in (("$/h", run.usd_per_hour), ("launch time", run.launched),
                                        ("end time", run.last_record)) if value is None]
    return f"{NOT_RECORDED} (no {', no '.join(missing)})"


def outcome(run: RunFigures) -> str:
    parts = [run.state or f"state {NOT_RECORDED}"]
    parts.append(f"exit {run.exit_code}" if run.exit_code is not None else
                 f"exit code {NOT_RECORDED}")
    if run.failed_phase:
        parts.append(f"failed in {run.failed_phase}" + (f": {run.failure}" if run.failure
                                                         else ""))
    return ", ".join(parts)


def comparison_section(runs: RunList) -> list[str]:
    """Per provider: runs, succeeded, median launch → train, mean $/h, recorded spend."""
    if runs.problem or not runs.runs:
        return []
    lines = ["## Comparison", "", *table(
        ("provider", "runs", "succeeded", "median launch → train", "median $/h per GPU",
         "recorded cost"), [comparison_row(p, [r for r in runs.runs if r.provider == p])
                            for p in PROVIDERS]), ""]
    return lines + ["Each median is over the runs that recorded the figure; \"recorded cost\" "
                    "sums the runs whose cost is known (how many, of all).", ""]


def comparison_row(provider: str, runs: list[RunFigures]) -> list[str]:
    starts = [r.launch_to_train_s for r in runs if r.launch_to_train_s is not None]
    per_gpu = [r.usd_per_hour / r.gpu_count for r in runs
               if r.usd_per_hour is not None and r.gpu_count]
    costs = [r.cost_usd for r in runs if r.cost_usd is not None]
    spend = f"≥ ${sum(costs):,.2f} ({len(costs)} of {len(runs)})" if costs else NOT_RECORDED
    return [provider, str(len(runs)), str(sum(r.state == "succeeded" for r in runs)),
            _span(_median(starts)), _usd(_median(per_gpu), 3), spend]


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def offers_section(report: Report) -> list[str]:
    lines = ["## Live offers now", "", f"For {report.requirement} ({report.basis}): each "
             "cloud's cheapest fitting offer at the time of the report.", ""]
    rows = [offer_row(o) for o in report.offers]
    return lines + table(("provider", "offer", "region", "GPU", "$/h", "$/h per GPU",
                          "fitting offers"), rows) + [""]


def offer_row(offer: OfferFigures) -> list[str]:
    if offer.problem:
        return [offer.provider, f"unavailable: {_cell(offer.problem)}", "", "", "", "", ""]
    gpu = f"{offer.gpu_count} × {offer.gpu}" if offer.gpu_count else (offer.gpu or "?")
    return [offer.provider, offer.plan, offer.region, gpu, _usd(offer.usd_per_hour, 3),
            _usd(offer.usd_per_gpu_hour, 3), str(offer.fitting)]


def notes_section() -> list[str]:
    return ["## How the figures are read", "",
            "- $/h and the launch time: the run's `placement.usd_per_hour` and "
            "`placement.launched_epoch` in `manifest.json`. A run's $/h is all it billed "
            "per hour (on Vultr the plan and the volume); an offer's below is the machine's "
            "alone (Vast's includes its disk). Times are whole seconds as the runner "
            "records them, so a run of a few seconds reads up to 1 s off.",
            "- launch → train: from the launch time to the start of the `train` phase in "
            "`status.json` (else the manifest's phases). Training logs carry no time per "
            "line, so the first training step itself cannot be timed.",
            "- throughput: `trainer log` names the parser that matched `logs/train.log`: "
            "`ups` (seconds per epoch from `reports/training_log.jsonl`, operator batches "
            "per second with the log's `Finished epoch` lines), `example` (steps per second "
            "from the example trainer's `done:` line) or `none`.",
            "- wall time: the manifest's `started` to `ended`.",
            "- cost: $/h × the hours from launch to the last recorded time (the last phase's "
            "end or the status's last update). Billing stops when the instance is deleted, "
            "after that, so it is a lower bound.", ""]


def table(header: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def _cell(text: str) -> str:
    """One table cell: one line, no column breaks."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _usd(value: float | None, places: int = 2) -> str:
    return NOT_RECORDED if value is None else f"${value:,.{places}f}"


def _span(seconds: float | None) -> str:
    return NOT_RECORDED if seconds is None else duration(seconds)


def as_dict(report: Report) -> dict[str, Any]:
    """The same figures for ``--json`` (None where not recorded)."""
    return {
        "made_epoch": report.made, "requirement": report.requirement, "basis": report.basis,
        "runs_found": report.runs.found, "runs_capped": report.runs.capped,
        "runs_problem": report.runs.problem or None,
        "runs": [run_dict(r) for r in report.runs.runs],
        "offers": [{"provider": o.provider, "plan": o.plan or None, "region": o.region or None,
                    "gpu": o.gpu or None, "gpu_count": o.gpu_count,
                    "usd_per_hour": o.usd_per_hour, "usd_per_gpu_hour": o.usd_per_gpu_hour,
                    "fitting": o.fitting, "problem": o.problem or None}
                   for o in report.offers],
    }


def run_dict(run: RunFigures) -> dict[str, Any]:
    return {
        "run_id": run.run_id, "stage": run.stage or None, "provider": run.provider or None,
        "region": run.region or None, "plan": run.plan or None,
        "gpu_type": run.gpu_type or None, "gpu_count": run.gpu_count,
        "usd_per_hour": run.usd_per_hour, "launch_to_train_s": run.launch_to_train_s,
        "wall_s": run.wall_s, "billed_hours_at_least": run.billed_hours,
        "cost_usd_at_least": run.cost_usd, "state": run.state or None,
        "exit_code": run.exit_code, "failed_phase": run.failed_phase or None,
        "throughput": {"parser": run.throughput.parser,
                       "steps_per_s": run.throughput.steps_per_s,
                       "stages": [vars(s) for s in run.throughput.stages],
                       "missing": run.throughput.missing or None},
        "problems": list(run.problems),
    }
