"""Training throughput from what a run's training really printed (``logs/train.log``) and,
for UPS, the epoch log it writes beside its reports (``reports/training_log.jsonl``).

Two trainers are understood; :attr:`Throughput.parser` says which one matched:

- ``ups`` — UPS (``scripts/run_fast_to_sota.py`` runs ``scripts/train.py``). Its stdout
  prints, per operator epoch and rank, ``[TRAIN-DEBUG] Finished epoch E on rank R:
  processed B batches, batch_count=C``, with no time on the line. Each epoch's duration is
  in ``reports/training_log.jsonl`` (``{"stage", "epoch", "epoch_time_sec", ...}``, one line
  per epoch of every UPS stage). Batches per second come from both together (operator
  epochs, rank 0); seconds per epoch from the epoch log alone.
- ``example`` — the example trainer (``examples/tiny-train/train.py``): ``run ID: N rows,
  starting at step S``, ``step N: loss …`` and ``done: {json}`` whose ``step`` and
  ``seconds`` (wall time of its loop) give steps per second.

Anything else: ``none``, with the reason the figure cannot be derived.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

UPS_FINISHED = re.compile(r"\[TRAIN-DEBUG\] Finished epoch (\d+) on rank (\d+): processed "
                          r"(\d+) batches")
UPS_STARTED = re.compile(r"\[TRAIN-DEBUG\] (?:About to start training loop|Starting epoch)")
EXAMPLE_START = re.compile(r"^run \S*: \d+ rows, starting at step (\d+)\s*$", re.M)
EXAMPLE_STEP = re.compile(r"^step (\d+): loss ", re.M)
EXAMPLE_DONE = re.compile(r"^done: (\{.*\})\s*$", re.M)
UPS_OPERATOR = "operator"


@dataclass(frozen=True)
class StageRate:
    """One UPS training stage: its epochs and their mean duration; batches per second when
    the train log gave the epochs' batch counts."""

    stage: str
    epochs: int
    seconds_per_epoch: float
    batches_per_s: float | None = None


@dataclass(frozen=True)
class Throughput:
    """``parser``: ``ups``, ``example`` or ``none``. ``missing``: why a figure is absent."""

    parser: str
    steps_per_s: float | None = None  # example: loop steps per second
    steps: int | None = None
    stages: tuple[StageRate, ...] = ()
    missing: str = ""

    def summary(self) -> str:
        """One line for a table cell, or "" when nothing was derived."""
        if self.steps_per_s is not None:
            return f"{self.steps_per_s:.2f} steps/s ({self.steps} steps)"
        parts = []
        for rate in self.stages:
            per = f"{rate.batches_per_s:.2f} batches/s, " if rate.batches_per_s else ""
            parts.append(f"{rate.stage}: {per}{rate.seconds_per_epoch:.1f} s/epoch "
                         f"({rate.epochs} epochs)")
        return "; ".join(parts)


def throughput(train_log: str | None, epoch_log: str | None) -> Throughput:
    """The figures ``train_log`` (None: not in the bucket) and ``epoch_log`` (UPS's
    ``training_log.jsonl``, None when absent) give."""
    text = train_log or ""
    if EXAMPLE_DONE.search(text) or EXAMPLE_START.search(text):
        return example_rate(text)
    if UPS_FINISHED.search(text) or UPS_STARTED.search(text) or epoch_log:
        return ups_rate(text, epoch_log)
    if train_log is None:
        return Throughput("none", missing="logs/train.log is not in the bucket")
    return Throughput("none", missing="logs/train.log has no line of a known trainer (UPS "
                                      "epochs or the example's steps)")


def example_rate(text: str) -> Throughput:
    start = EXAMPLE_START.search(text)
    first = int(start.group(1)) if start else 0
    steps = [int(m.group(1)) for m in EXAMPLE_STEP.finditer(text)]
    done = _done_report(text)
    if done is None:
        why = "the example trainer printed no `done:` line (it did not finish), and its " \
              "step lines carry no time"
        return Throughput("example", steps=(max(steps) - first) if steps else None, missing=why)
    step, seconds = done.get("step"), done.get("seconds")
    if not isinstance(step, int) or not isinstance(seconds, (int, float)) or seconds <= 0:
        return Throughput("example", missing="the `done:` line has no step count or seconds")
    return Throughput("example", steps_per_s=(step - first) / seconds, steps=step - first)


def _done_report(text: str) -> dict | None:
    found = EXAMPLE_DONE.findall(text)
    if not found:
        return None
    try:
        data = json.loads(found[-1])
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def ups_rate(text: str, epoch_log: str | None) -> Throughput:
    """Seconds per epoch per UPS stage from the epoch log; operator batches per second where
    the train log's rank-0 ``Finished epoch`` lines match its operator epochs one to one."""
    if epoch_log is None:
        return Throughput("ups", missing="UPS prints no time on its epoch lines, and "
                                         "reports/training_log.jsonl (epoch_time_sec) is not "
                                         "in the bucket")
    epochs = _epoch_times(epoch_log)
    if not epochs:
        return Throughput("ups", missing="reports/training_log.jsonl has no epoch_time_sec")
    batches = [int(m.group(3)) for m in UPS_FINISHED.finditer(text) if m.group(2) == "0"]
    stages = []
    for stage, times in epochs.items():
        rate = None
        if stage == UPS_OPERATOR and len(batches) == len(times) and sum(times) > 0:
            rate = sum(batches) / sum(times)
        stages.append(StageRate(stage, len(times), sum(times) / len(times), rate))
    return Throughput("ups", stages=tuple(stages))


def _epoch_times(epoch_log: str) -> dict[str, list[float]]:
    """``{stage: [epoch_time_sec, ...]}`` in the order the lines were written."""
    times: dict[str, list[float]] = {}
    for line in epoch_log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        seconds = entry.get("epoch_time_sec") if isinstance(entry, dict) else None
        if isinstance(seconds, (int, float)) and seconds >= 0:
            times.setdefault(str(entry.get("stage") or "?"), []).append(float(seconds))
    return times
