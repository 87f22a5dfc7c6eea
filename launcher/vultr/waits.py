"""Waiting for a resource to reach a state, against a monotonic deadline.

A wait ends one of three ways: the record (ready), :class:`~launcher.errors.WaitFailedError`
(a state it cannot leave on its own was seen) or :class:`~launcher.errors.WaitTimeoutError`
(the deadline passed). Both errors carry the last record seen as ``last_state``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from launcher.errors import WaitFailedError, WaitTimeoutError

T = TypeVar("T")


@dataclass(frozen=True)
class PollPolicy:
    """Capped exponential backoff between polls, in seconds.

    A poll lands on average ~15 % (at most 30 %, never more than ``max_interval``) after the
    state it waits for: ×1.3 from 0.5 s sees a volume that takes 1 s after two looks and an
    instance that takes 3 minutes after ~22, far below Vultr's 30 requests per second."""

    initial: float = 0.5
    factor: float = 1.3
    max_interval: float = 15.0

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.factor < 1 or self.max_interval < self.initial:
            raise ValueError("poll intervals must be positive and non-decreasing")


def _describe(record: object) -> str:
    return str(getattr(record, "state", record))


def wait_for(
    fetch: Callable[[], T],
    ready: Callable[[T], bool],
    *,
    deadline_s: float,
    what: str,
    failed: Callable[[T], str | None] | None = None,
    poll: PollPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Poll ``fetch()`` until ``ready(record)``; return that record.

    ``failed(record)`` returns a reason when the record is in a failed state. Errors from
    ``fetch`` (already retried by the transport) propagate unchanged. The last poll happens at
    the deadline, so a resource that becomes ready just in time is not reported as late.
    """
    poll = poll or PollPolicy()
    deadline = clock() + deadline_s
    interval = poll.initial
    while True:
        record = fetch()
        if ready(record):
            return record
        reason = failed(record) if failed else None
        if reason:
            raise WaitFailedError(
                f"{what} failed: {reason} ({_describe(record)})", last_state=record
            )
        remaining = deadline - clock()
        if remaining <= 0:
            raise WaitTimeoutError(
                f"{what} was not ready after {deadline_s:g}s; last state: {_describe(record)}",
                last_state=record,
            )
        sleep(min(interval, remaining))
        interval = min(interval * poll.factor, poll.max_interval)
