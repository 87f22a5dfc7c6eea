"""A run's logs from the bucket: printed once, or followed while the run goes on.

The runner's heartbeat re-uploads ``logs/runner.log`` and ``logs/train.log`` every
``heartbeat_s`` (a log over 16 MiB as its last 16 MiB only); the upload phase sends them whole.
S3 has no append, so following lists the object (size and etag: unchanged means nothing to
fetch) and, when it changed, re-reads it and prints what is new:

- the object still starts with what was shown: print the rest;
- otherwise (the 16 MiB window moved on, or the final upload replaced a tail with the whole
  log) the end of what was shown is looked for in the new text, and when the two overlap
  exactly, what follows the overlap is printed;
- no overlap (the object shrank, or was replaced): say ``(log rotated; showing the last
  part)`` and print it all.

:func:`follow` polls with backoff (``poll_s`` doubling to ``max_poll_s``, back to ``poll_s``
whenever something new arrived), under a deadline and an iteration cap, and stops once the
run's status is final and the log has not changed for ``settle_polls`` polls after that.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from launcher.bucket import Bucket, ObjectStat
from launcher.errors import ApiError, LauncherError
from launcher.operate.runstatus import RunStatus, read_status

LOGS = {"train": "logs/train.log", "runner": "logs/runner.log"}
ROTATED = "(log rotated; showing the last part)"
ANCHOR_CHARS = 4096
MIN_ANCHOR_CHARS = 16
MAX_ANCHOR_TRIES = 64
MAX_BUCKET_FAILURES = 3
WAIT_NOTE_S = 30.0  # while the log is not there: a progress line this often
UPLOADS_ONCE_TRAINING = "the heartbeat uploads logs every heartbeat_s once the run trains"


class LogMissing(LauncherError):
    """The log is not in the bucket (yet)."""


def log_url(bucket: Bucket, run_id: str, which: str) -> str:
    return bucket.address.run_url(run_id, LOGS[which])


def log_stat(bucket: Bucket, url: str) -> ObjectStat | None:
    """The log object as listed (size, etag), None when it is not there; a failure raises."""
    return bucket.stat(url)


def read_log(bucket: Bucket, run_id: str, which: str) -> str:
    """The whole log as the bucket has it now."""
    url = log_url(bucket, run_id, which)
    if log_stat(bucket, url) is None:
        raise LogMissing(f"{LOGS[which]} of run {run_id} is not in the bucket (yet)",
                         hint=f"{UPLOADS_ONCE_TRAINING}; `launcher status RUN` shows where it is")
    return bucket.read_text(url)


def new_part(shown: str, text: str) -> tuple[str, bool]:
    """What of ``text`` was not shown yet, and whether the log was rotated (no overlap)."""
    if text.startswith(shown):
        return text[len(shown):], False
    size = min(ANCHOR_CHARS, len(shown) // 2)
    if size >= MIN_ANCHOR_CHARS:
        anchor = shown[-size:]
        at = text.find(anchor)
        for _ in range(MAX_ANCHOR_TRIES):
            if at < 0:
                break
            end = at + size
            overlap = min(end, len(shown))
            if text[end - overlap:end] == shown[len(shown) - overlap:]:
                return text[end:], False
            at = text.find(anchor, at + 1)
    return text, True


@dataclass
class FollowResult:
    """Why following ended: ``final`` (the run ended and its log settled) or ``deadline``."""

    reason: str
    state: str
    polls: int
    seen: bool  # the log was in the bucket at least once


@dataclass
class Waiting:
    """What following says on stderr while the log is not in the bucket: what it waits for
    once, then a line every ``every_s`` (it may be minutes: boot, setup, then a heartbeat).
    ``aside``, when given, ends the first of those later lines (once): where else to look
    while the bucket has nothing."""

    log: str
    run_id: str
    started: float
    every_s: float = WAIT_NOTE_S
    said_at: float | None = None
    aside: str = ""

    def say(self, now: float, status: RunStatus) -> str | None:
        if self.said_at is not None and now - self.said_at < self.every_s:
            return None
        first, self.said_at = self.said_at is None, now
        if status.data is None:
            where = "no status from the run yet"
        else:
            where = f"the run is {status.label()}"
        if first:
            return (f"(waiting for {self.log} of run {self.run_id}: not in the bucket yet, "
                    f"{where}; the runner's heartbeat uploads it every heartbeat_s once "
                    "training runs; Ctrl-C stops)")
        aside, self.aside = (f"; {self.aside}" if self.aside else ""), ""
        return (f"(still waiting for {self.log}: {now - self.started:.0f} s so far, "
                f"{where}{aside})")


@dataclass
class _Tail:
    """What following has printed of the log so far, and the object it last read."""

    bucket: Bucket
    url: str
    emit: Callable[[str], None]
    note: Callable[[str], None]
    shown: str = ""
    last: tuple[int, str] | None = None
    seen: bool = False  # the log was in the bucket at least once

    def poll(self) -> bool:
        """Print what is new in the log; True when it changed."""
        found = log_stat(self.bucket, self.url)
        changed = False
        if found is not None and (found.size, found.etag) != self.last:
            text = self.bucket.read_text(self.url)
            part, rotated = new_part(self.shown, text)
            if rotated and self.seen:
                self.note(ROTATED)
            if part:
                self.emit(part)
            changed = bool(part) or text != self.shown
            self.shown, self.seen = text, True
        self.last = None if found is None else (found.size, found.etag)
        return changed


def _poll(tail: _Tail, run_id: str, failures: int) -> tuple[bool, RunStatus | None, int]:
    """One poll of the log and the run's status: (changed, status or None, failures in a
    row). A bucket error is a note until MAX_BUCKET_FAILURES in a row, then raised."""
    changed = False
    try:
        changed = tail.poll()
        status = read_status(tail.bucket, run_id)
        if status.unreachable:
            raise ApiError(status.problem)
        return changed, status, 0
    except ApiError as exc:
        if failures + 1 >= MAX_BUCKET_FAILURES:
            raise
        tail.note(f"({exc.message}; trying again)")
        return changed, None, failures + 1


def follow(bucket: Bucket, run_id: str, which: str, emit: Callable[[str], None],
           note: Callable[[str], None], *, max_wait_s: float = 12 * 3600,
           poll_s: float = 2.0, max_poll_s: float = 30.0, settle_polls: int = 2,
           clock: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep, aside: str = "") -> FollowResult:
    """Print the log's new text as it arrives (see the module doc). Bounded by
    ``max_wait_s`` and by as many polls as fit in it at ``poll_s``; Ctrl-C ends it too.
    ``aside``: see :class:`Waiting`."""
    tail = _Tail(bucket, log_url(bucket, run_id, which), emit, note)
    deadline = clock() + max_wait_s
    max_polls = int(max_wait_s / poll_s) + 2
    waiting = Waiting(LOGS[which], run_id, clock(), aside=aside)
    delay, settled, failures, state, polls = poll_s, 0, 0, "", 0
    while polls < max_polls:
        polls += 1
        changed, status, failures = _poll(tail, run_id, failures)
        said = None if tail.seen or status is None else waiting.say(clock(), status)
        if said:
            note(said)
        if status is not None:
            state = status.state
            settled = 0 if changed or not status.final else settled + 1
            if settled >= settle_polls:
                return FollowResult("final", state, polls, tail.seen)
        quiet = not changed and not (status is not None and status.final)
        delay = min(delay * 2, max_poll_s) if quiet else poll_s
        left = deadline - clock()
        if left <= 0:
            break
        sleep(min(delay, left))
    return FollowResult("deadline", state, polls, tail.seen)
