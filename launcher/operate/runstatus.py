"""A run's ``status.json`` as the bucket holds it, or why it cannot be read.

The runner's heartbeat (:mod:`launcher.runner.status`) re-uploads ``status.json`` under the
run's folder (``<runs_prefix>/<id>/``; node k of an N-node run: ``<id>/nodes/<k>/``).
"Not uploaded yet" and "bucket unreachable" are different answers: a failed read is never
shown as "no status".

"Upload verified" (:attr:`RunStatus.upload_verified`) is read from ``status.json``: the
supervisor's ``upload`` phase ends ``ok: true`` (detail ``verified``) only after every file it
sent was listed back in the bucket with its size; a failed verification fails that phase. The
status file itself is uploaded at the start of that phase and once more at teardown, so the
copy in the bucket shows the verdict once teardown's final upload got through. (The
watchdog's own upload is not a phase: a run it uploaded shows no verified upload here, so its
volume is kept unless ``--force``; when that upload was verified the watchdog's teardown has
deleted the volume itself.)
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from launcher.bucket import Bucket
from launcher.errors import ApiError
from launcher.timefmt import parse_time

FINAL_STATES = frozenset({"succeeded", "failed", "torn-down"})
STATUS_FILE = "status.json"
UPLOAD_PHASE = "upload"
NOT_UPLOADED = "not uploaded yet"
UNREACHABLE = "bucket unreachable"
NOT_CONFIGURED = "bucket not configured"
STATUS_READERS = 8  # status.json reads in flight at once


@dataclass(frozen=True)
class RunStatus:
    """``status.json`` as the bucket has it (``data``), or why there is none (``problem``).
    ``unreachable``: the bucket itself could not be read (or is not configured)."""

    data: dict[str, Any] | None = None
    problem: str = ""
    unreachable: bool = False
    uploaded: float | None = None  # when the bucket last received it: the last heartbeat

    @property
    def state(self) -> str:
        return str((self.data or {}).get("state") or "")

    @property
    def phase(self) -> str:
        return str((self.data or {}).get("phase") or "")

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def phases(self) -> list[dict[str, Any]]:
        phases = (self.data or {}).get("phases")
        return [p for p in phases if isinstance(p, dict)] if isinstance(phases, list) else []

    @property
    def upload_verified(self) -> bool:
        """An ``upload`` phase ended ok (the runner lists the bucket back before saying so)."""
        return any(p.get("name") == UPLOAD_PHASE and p.get("ok") is True for p in self.phases)

    @property
    def updated(self) -> float | None:
        """The last sign of life: the later of the last upload (the heartbeat re-uploads an
        unchanged file too) and the file's own ``updated`` (its last change)."""
        times = [t for t in (self.uploaded, parse_time(str((self.data or {}).get("updated")
                                                           or ""))) if t is not None]
        return max(times) if times else None

    def texts(self, name: str) -> list[str]:
        """``notes`` or ``left_behind``: the list as written, strings only."""
        items = (self.data or {}).get(name)
        return [str(i) for i in items] if isinstance(items, list) else []

    def label(self) -> str:
        """``running (train)``, ``succeeded``, or the problem."""
        if self.data is None:
            return self.problem
        return f"{self.state} ({self.phase})" if self.phase and not self.final else self.state


@dataclass(frozen=True)
class NoBucket:
    """Stands in for the bucket when it is not configured; ``reason`` says what to set."""

    reason: str = "set B2_BUCKET, B2_S3_ENDPOINT and the B2 keys"


Store = Bucket | NoBucket


def read_status(bucket: Store, run_id: str, rel: str = STATUS_FILE) -> RunStatus:
    """The run's ``status.json`` (``rel``: another under the run's folder, a node's): listed
    first (so "not uploaded yet" and "the bucket cannot be asked" differ, and the listing's
    time is the last heartbeat), then read. Never raises for the bucket's sake; the answer
    says what went wrong."""
    if isinstance(bucket, NoBucket):
        return RunStatus(problem=f"{NOT_CONFIGURED}: {bucket.reason}", unreachable=True)
    url = bucket.address.run_url(run_id, rel)
    try:
        found = bucket.stat(url)
    except ApiError as exc:
        return RunStatus(problem=f"{UNREACHABLE}: {exc.message}", unreachable=True)
    if found is None:
        return RunStatus(problem=NOT_UPLOADED)
    try:
        return RunStatus(data=bucket.read_json(url), uploaded=found.modified)
    except ApiError as exc:
        return RunStatus(problem=f"status.json unreadable: {exc.message}")


def read_statuses(bucket: Store, run_ids: list[str]) -> dict[str, RunStatus]:
    """:func:`read_status` of each run, several at a time (each is a round trip or two)."""
    if len(run_ids) < 2:
        return {r: read_status(bucket, r) for r in run_ids}
    with ThreadPoolExecutor(min(STATUS_READERS, len(run_ids))) as pool:
        return dict(zip(run_ids, pool.map(lambda r: read_status(bucket, r), run_ids),
                        strict=True))
