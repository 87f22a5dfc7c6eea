"""The figures of ``launcher report vultr-vs-vast``, from real records only.

Runs come from the bucket: each ``runs/<id>/manifest.json`` (written by the runner's upload
phase), its ``status.json`` (uploaded last, with teardown), ``logs/train.log`` and, for UPS,
``reports/training_log.jsonl``. Live offers come from each provider's catalogue. A figure
that no record holds is None here and "not recorded" on the page: nothing is estimated
from defaults.

- :func:`gather_runs`: the runs (newest :data:`MOST_RUNS` by the time in their id, or the
  ids asked for) as :class:`RunFigures`.
- :func:`cheapest_offer`: one provider's cheapest fitting offer, or why there is none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from launcher.bucket import Bucket
from launcher.errors import ApiError, LauncherError
from launcher.operate.report_logs import Throughput, throughput
from launcher.operate.runstatus import STATUS_FILE, NoBucket, Store
from launcher.providers.base import Provider
from launcher.providers.offers import Requirement, candidates
from launcher.timefmt import parse_time

MANIFEST = "manifest.json"
TRAIN_LOG = "logs/train.log"
EPOCH_LOG = "reports/training_log.jsonl"
MOST_RUNS = 200
READERS = 8
TRAIN_PHASE = "train"
ID_TIME = re.compile(r"(\d{8}-\d{6})$")


@dataclass(frozen=True)
class RunFigures:
    """One run as its records say. Every optional figure is None when not recorded."""

    run_id: str
    stage: str = ""
    provider: str = ""
    region: str = ""
    plan: str = ""
    gpu_type: str = ""
    gpu_count: int | None = None
    usd_per_hour: float | None = None
    launched: float | None = None  # placement.launched_epoch
    train_started: float | None = None  # the train phase's start
    started: float | None = None
    ended: float | None = None
    last_record: float | None = None  # the latest time any record of the run names
    state: str = ""
    exit_code: int | None = None
    failed_phase: str = ""
    failure: str = ""
    throughput: Throughput = field(default_factory=lambda: Throughput("none"))
    problems: tuple[str, ...] = ()  # records that could not be read

    @property
    def launch_to_train_s(self) -> float | None:
        if self.launched is None or self.train_started is None:
            return None
        return self.train_started - self.launched

    @property
    def wall_s(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started

    @property
    def billed_hours(self) -> float | None:
        """From launch to the last recorded time: billing runs until the instance is
        deleted, after that, so this is a lower bound."""
        if self.launched is None or self.last_record is None:
            return None
        return max(self.last_record - self.launched, 0.0) / 3600

    @property
    def cost_usd(self) -> float | None:
        hours = self.billed_hours
        return None if hours is None or self.usd_per_hour is None else hours * \
            self.usd_per_hour


@dataclass(frozen=True)
class RunList:
    """The runs read, how many the bucket had, and why none could be read (``problem``)."""

    runs: tuple[RunFigures, ...] = ()
    found: int = 0
    capped: bool = False
    problem: str = ""


@dataclass(frozen=True)
class OfferFigures:
    """One cloud's cheapest fitting offer now, or ``problem`` (no key, API failed, none)."""

    provider: str
    plan: str = ""
    region: str = ""
    gpu: str = ""
    gpu_count: int | None = None
    usd_per_hour: float | None = None
    fitting: int = 0
    problem: str = ""

    @property
    def usd_per_gpu_hour(self) -> float | None:
        if self.usd_per_hour is None or not self.gpu_count:
            return None
        return self.usd_per_hour / self.gpu_count


def list_run_ids(bucket: Bucket, most: int = MOST_RUNS) -> tuple[list[str], int]:
    """The ids of the runs with a manifest, newest first by the time in their id (then id),
    at most ``most``; also how many there are. Raises ApiError when the bucket fails."""
    prefix = bucket.address.runs_prefix.strip("/")
    found = bucket.list(bucket.address.run_url("*", MANIFEST))
    ids = sorted({parts[1] for parts in (o.key.split("/") for o in found)
                  if len(parts) == 3 and parts[0] == prefix and parts[2] == MANIFEST},
                 key=_newest_first)
    return ids[:most], len(ids)


def _newest_first(run_id: str) -> tuple[str, str]:
    stamp = ID_TIME.search(run_id)
    inverted = "".join(chr(ord("9") - ord(c) + ord("0")) if c.isdigit() else c
                       for c in (stamp.group(1) if stamp else "00000000-000000"))
    return inverted, run_id


def gather_runs(bucket: Store, run_ids: list[str] | None = None,
                most: int = MOST_RUNS) -> RunList:
    """The runs ``run_ids`` (None: every run with a manifest, newest ``most``); never raises
    for the bucket's sake: a failure is the list's or a run's ``problem``."""
    if isinstance(bucket, NoBucket):
        return RunList(problem=f"bucket not configured: {bucket.reason}")
    found = len(run_ids or [])
    try:
        if run_ids is None:
            run_ids, found = list_run_ids(bucket, most)
    except ApiError as exc:
        return RunList(problem=f"bucket unreachable: {exc.message}")
    with ThreadPoolExecutor(READERS) as pool:
        runs = tuple(pool.map(lambda r: read_run(bucket, r), run_ids))
    return RunList(runs, found, capped=found > len(run_ids))


def read_run(bucket: Bucket, run_id: str) -> RunFigures:
    """One run's figures from its objects; the ones missing are None."""
    problems: list[str] = []
    texts = read_objects(bucket, run_id, problems)
    manifest = _json(texts.get(MANIFEST), MANIFEST, problems)
    status = _json(texts.get(STATUS_FILE), STATUS_FILE, problems)
    if not manifest and not status and not problems:
        problems.append("no manifest.json or status.json in the bucket")
    return figures(run_id, manifest, status, texts, tuple(problems))


def read_objects(bucket: Bucket, run_id: str, problems: list[str]) -> dict[str, str]:
    """The run's manifest, status, train log and UPS epoch log that exist, by name."""
    try:
        keys = {o.key for o in bucket.list(bucket.address.run_url(run_id, "*"))}
    except ApiError as exc:
        problems.append(f"bucket unreachable: {exc.message}")
        return {}
    prefix = f"{bucket.address.runs_prefix.strip('/')}/{run_id}/"
    texts = {}
    for name in (MANIFEST, STATUS_FILE, TRAIN_LOG, EPOCH_LOG):
        if prefix + name in keys:
            try:
                texts[name] = bucket.read_text(bucket.address.run_url(run_id, name))
            except ApiError as exc:
                problems.append(f"{name} unreadable: {exc.message}")
    return texts


def _json(text: str | None, name: str, problems: list[str]) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        problems.append(f"{name} is not a JSON object")
        return {}
    return data


def figures(run_id: str, manifest: dict[str, Any], status: dict[str, Any],
            texts: dict[str, str], problems: tuple[str, ...]) -> RunFigures:
    placement = manifest.get("placement") if isinstance(manifest.get("placement"), dict) \
        else {}
    phases = _phases(status) or _phases(manifest)
    failed = next((p for p in phases if p.get("ok") is False), {})
    exit_code = manifest.get("exit_code")
    return RunFigures(
        run_id=run_id, stage=str(manifest.get("stage") or ""),
        provider=str(placement.get("provider") or ""), region=str(placement.get("region") or ""),
        plan=str(placement.get("plan") or ""), gpu_type=str(placement.get("gpu_type") or ""),
        gpu_count=_positive_int(placement.get("gpu_count")),
        usd_per_hour=_positive(placement.get("usd_per_hour")),
        launched=_positive(placement.get("launched_epoch")),
        train_started=next((parse_time(p.get("started")) for p in phases
                            if p.get("name") == TRAIN_PHASE), None),
        started=parse_time(manifest.get("started")), ended=parse_time(manifest.get("ended")),
        last_record=_last_time(manifest, status, phases),
        state=str(status.get("state") or manifest.get("state") or ""),
        exit_code=exit_code if isinstance(exit_code, int) else None,
        failed_phase=str(failed.get("name") or ""), failure=str(failed.get("detail") or ""),
        throughput=throughput(texts.get(TRAIN_LOG), texts.get(EPOCH_LOG)), problems=problems)


def _phases(record: dict[str, Any]) -> list[dict[str, Any]]:
    phases = record.get("phases")
    return [p for p in phases if isinstance(p, dict)] if isinstance(phases, list) else []


def _last_time(manifest: dict[str, Any], status: dict[str, Any],
               phases: list[dict[str, Any]]) -> float | None:
    times = [parse_time(manifest.get("ended")), parse_time(status.get("updated"))]
    times += [parse_time(p.get("ended")) for p in phases]
    known = [t for t in times if t is not None]
    return max(known) if known else None


def _positive(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return float(value)


def _positive_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
        else None


def cheapest_offer(name: str, opener: Callable[[str], Any],
                   requirement: Requirement) -> OfferFigures:
    """Provider ``name``'s cheapest fitting offer. ``opener(name)`` is a context manager
    giving the provider; a missing key or a failed API is the answer's ``problem``."""
    try:
        with opener(name) as provider:
            fitting = _fitting(provider, requirement)
    except LauncherError as exc:
        return OfferFigures(name, problem=exc.message)
    if not fitting:
        return OfferFigures(name, problem="no offer fits the requirement now")
    best = min(fitting, key=lambda o: (o.price_per_hour, o.plan_id))
    gpu = best.gpu_type or best.gpu_model or ""  # as the runs' rows name it (placement)
    return OfferFigures(name, best.plan_id, best.region, gpu, best.gpu_count,
                        best.price_per_hour, len(fitting))


def _fitting(provider: Provider, requirement: Requirement) -> list:
    return candidates(provider.rank_offers(requirement, list_excluded=False))
