"""A tiny training stage: fits y = w*x + b to the CSV files of the data set by gradient descent.

Standard library only, so it runs on any image (and in the offline demo). It follows the
launcher's contract for a training command:

- reads the synced data set from ``$LAUNCHER_DATA_DIR`` (``*.csv`` files of ``x,y`` rows);
- resumes from the newest checkpoint in ``$LAUNCHER_CHECKPOINT_DIR`` (the volume survives a
  restart, so a resumed run goes on where it stopped) and writes one every ``--save-every``
  steps, atomically;
- writes ``report.json`` to ``$LAUNCHER_REPORT_DIR`` at the end; both directories are uploaded;
- stops cleanly (checkpoint first) on SIGTERM, which the runner sends before the deadline.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import sys
import time
from pathlib import Path

STOP = False


def on_term(signum: int, frame: object) -> None:
    global STOP
    STOP = True


def load_rows(data: Path) -> list[tuple[float, float]]:
    rows = []
    for path in sorted(data.rglob("*.csv")):
        with path.open(newline="") as handle:
            rows += [(float(x), float(y)) for x, y in csv.reader(handle) if x != "x"]
    if not rows:
        sys.exit(f"no x,y rows in {data}/*.csv")
    return rows


def latest_checkpoint(ckpt_dir: Path) -> dict | None:
    found = sorted(ckpt_dir.glob("step-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    return json.loads(found[-1].read_text()) if found else None


def save(ckpt_dir: Path, state: dict) -> None:
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    target = ckpt_dir / f"step-{state['step']}.json"
    partial = target.with_suffix(".partial")
    partial.write_text(json.dumps(state))
    os.replace(partial, target)


def step(rows: list[tuple[float, float]], w: float, b: float, lr: float) -> tuple:
    n = len(rows)
    grad_w = sum(2 * (w * x + b - y) * x for x, y in rows) / n
    grad_b = sum(2 * (w * x + b - y) for x, y in rows) / n
    loss = sum((w * x + b - y) ** 2 for x, y in rows) / n
    return w - lr * grad_w, b - lr * grad_b, loss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=0.3)
    parser.add_argument("--save-every", type=int, default=50)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    data = Path(os.environ["LAUNCHER_DATA_DIR"])
    ckpt_dir = Path(os.environ["LAUNCHER_CHECKPOINT_DIR"])
    rows = load_rows(data)
    state = latest_checkpoint(ckpt_dir) or {"step": 0, "w": 0.0, "b": 0.0, "loss": None}
    print(f"run {os.environ.get('LAUNCHER_RUN_ID')}: {len(rows)} rows, "
          f"starting at step {state['step']}", flush=True)
    started = time.monotonic()
    while state["step"] < args.steps and not STOP:
        w, b, loss = step(rows, state["w"], state["b"], args.lr)
        state = {"step": state["step"] + 1, "w": w, "b": b, "loss": loss}
        if state["step"] % args.save_every == 0 or state["step"] == args.steps:
            save(ckpt_dir, state)
            print(f"step {state['step']}: loss {loss:.6f} w {w:.4f} b {b:.4f}", flush=True)
    save(ckpt_dir, state)
    report = {**state, "rows": len(rows), "seconds": round(time.monotonic() - started, 3),
              "stopped_early": STOP}
    report_dir = Path(os.environ["LAUNCHER_REPORT_DIR"])
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "report.json").write_text(json.dumps(report, indent=2))
    print(f"done: {json.dumps(report)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
