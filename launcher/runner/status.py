"""What the runner tells the world: a timestamped log and a status file, phase by phase.

``status.json`` (in ``Paths.state_dir``) is rewritten atomically after every change and is
what the heartbeat uploads to ``runs/<run-id>/status.json``: the current phase, each finished
phase with its times and outcome, the final state, and anything left behind on teardown.
Every line and every detail passes through ``scrub`` first, so no secret reaches either.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class PhaseFailed(Exception):
    """A phase could not do its job; ``reason`` is one line for the status file."""

    def __init__(self, phase: str, reason: str) -> None:
        super().__init__(f"{phase}: {reason}")
        self.phase = phase
        self.reason = reason


@dataclass
class PhaseRecord:
    name: str
    started: str
    ended: str = ""
    seconds: float = 0.0
    ok: bool | None = None
    detail: str = ""


@dataclass
class Status:
    run_id: str
    state: str = "starting"  # starting | running | succeeded | failed | torn-down
    phase: str = ""
    phases: list[PhaseRecord] = field(default_factory=list)
    reason: str = ""
    left_behind: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    updated: str = ""
    # An N-node run: this machine's node index and the node count (None/0: one machine).
    node: int | None = None
    nodes: int = 0


class Reporter:
    """Writes the log (``runner.log``) and ``status.json``; thread-safe (the heartbeat and
    the watchdog read and write it too)."""

    def __init__(self, run_id: str, state_dir: str | Path, log_dir: str | Path,
                 scrub: Callable[[str], str] = lambda text: text) -> None:
        self.status_path = Path(state_dir) / "status.json"
        self.log_path = Path(log_dir) / "runner.log"
        self.status = Status(run_id)
        self._scrub = scrub
        self._lock = threading.RLock()
        for directory in (self.status_path.parent, self.log_path.parent):
            directory.mkdir(parents=True, exist_ok=True)

    def log(self, message: str) -> None:
        line = f"{utc_now()} {self._scrub(message)}\n"
        with self._lock, open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(line)
        sys.stderr.write(line)  # journald keeps it too

    def note(self, message: str) -> None:
        """A remark that belongs in the status file as well as the log (e.g. CPU-only)."""
        with self._lock:
            self.status.notes.append(self._scrub(message))
            self.log(message)
            self._save()

    def set_state(self, state: str, reason: str = "") -> None:
        with self._lock:
            self.status.state = state
            if reason:
                self.status.reason = self._scrub(reason)
            self._save()

    def set_node(self, node: int, nodes: int) -> None:
        """Mark the status as node ``node`` of an ``nodes``-node run."""
        with self._lock:
            self.status.node, self.status.nodes = node, nodes
            self._save()

    def left_behind(self, what: str) -> None:
        with self._lock:
            self.status.left_behind.append(self._scrub(what))
            self.log(f"LEFT BEHIND: {what}")
            self._save()

    @contextmanager
    def phase(self, name: str) -> Iterator[PhaseRecord]:
        """Time one phase; an exception marks it failed (``PhaseFailed`` keeps its reason)."""
        record = PhaseRecord(name, utc_now())
        started = time.monotonic()
        with self._lock:
            self.status.phase = name
            self.status.state = "running"
            self.status.phases.append(record)
            self._save()
        self.log(f"phase {name}: start")
        try:
            yield record
        except BaseException as exc:
            reason = exc.reason if isinstance(exc, PhaseFailed) else f"{type(exc).__name__}: {exc}"
            self._finish(record, started, False, reason)
            raise
        self._finish(record, started, True, record.detail)

    def _finish(self, record: PhaseRecord, started: float, ok: bool, detail: str) -> None:
        with self._lock:
            record.ended = utc_now()
            record.seconds = round(time.monotonic() - started, 3)
            record.ok = ok
            record.detail = self._scrub(detail)
            self._save()
        self.log(f"phase {record.name}: {'ok' if ok else 'FAILED'} in {record.seconds}s"
                 + (f": {record.detail}" if record.detail else ""))

    def snapshot(self) -> dict:
        with self._lock:
            return json.loads(json.dumps(asdict(self.status)))

    def _save(self) -> None:
        self.status.updated = utc_now()
        data = json.dumps(asdict(self.status), indent=2)
        temp = self.status_path.with_suffix(".tmp")
        temp.write_text(data, encoding="utf-8")
        os.replace(temp, self.status_path)
