"""Which failed calls are worth trying again, and after how long.

:func:`retry_decision` is a pure function of one failed attempt: it knows nothing about HTTP
sessions, sleeps or clocks, so it is tested as a table. The rules follow Vultr's own Go client:
retry 429 (honouring ``Retry-After``), connection errors, timeouts and 5xx except 501; never
retry any other 4xx.

Whether a failure is *ambiguous* (the server may have acted on the request) is a separate
question, answered by :attr:`Outcome.ambiguous`; the transport uses it to keep mutating calls
from being repeated blindly.
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Literal, Protocol


class FailureKind(enum.Enum):
    """A failure that produced no HTTP status."""

    CONNECT = "connect error"  # refused, unresolvable or timed out while connecting: never sent
    READ_TIMEOUT = "read timeout"  # sent, then no answer in time: the server may have acted
    DROPPED = "connection dropped"  # sent, then the connection broke: the server may have acted
    # sent, then the answer did not complete within the attempt's deadline (a server that
    # drips bytes defeats the per-read timeout): the server may have acted
    DEADLINE = "no complete answer in time"


@dataclass(frozen=True)
class Outcome:
    """One failed attempt: an HTTP status (with its ``Retry-After`` header) or a failure kind."""

    status: int | None = None
    retry_after: str | None = None
    failure: FailureKind | None = None

    @property
    def ambiguous(self) -> bool:
        """True when the request may have taken effect even though it failed."""
        if self.failure is not None:
            return self.failure is not FailureKind.CONNECT
        return self.status is not None and self.status >= 500 and self.status != 501


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. ``deadline_s`` bounds one call including every retry and wait."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    retry_after_cap: float = 60.0
    jitter: Literal["full", "equal", "none"] = "full"
    deadline_s: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min(self.base_delay, self.max_delay, self.retry_after_cap, self.deadline_s) < 0:
            raise ValueError("delays and deadline must not be negative")
        if self.jitter not in ("full", "equal", "none"):
            raise ValueError(f"unknown jitter {self.jitter!r}")


@dataclass(frozen=True)
class Decision:
    retry: bool
    delay: float
    reason: str


class Rng(Protocol):
    def random(self) -> float: ...


def backoff_delay(attempt: int, policy: RetryPolicy, rng: Rng) -> float:
    """Exponential backoff after failed attempt number ``attempt`` (1-based), with jitter."""
    ceiling = min(policy.max_delay, policy.base_delay * 2 ** max(attempt - 1, 0))
    if policy.jitter == "full":
        return ceiling * rng.random()
    if policy.jitter == "equal":
        return ceiling / 2 + (ceiling / 2) * rng.random()
    return ceiling


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait per a ``Retry-After`` value (seconds or HTTP-date); None if unusable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - now).total_seconds()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def _retryable(outcome: Outcome) -> str | None:
    """Why this outcome may be retried, or None when it must not be."""
    if outcome.failure is not None:
        return outcome.failure.value
    status = outcome.status
    if status == 429:
        return "rate limited (HTTP 429)"
    if status is not None and status >= 500 and status != 501:
        return f"server error (HTTP {status})"
    return None


def retry_decision(
    outcome: Outcome,
    attempt: int,
    policy: RetryPolicy,
    rng: Rng | None = None,
    *,
    time_left: float | None = None,
    now: datetime | None = None,
) -> Decision:
    """Decide whether to retry after failed attempt number ``attempt`` (1-based).

    ``time_left`` is what remains of the call's deadline (None: unbounded); a retry whose
    delay would pass it is refused. ``now`` (wall clock, UTC) is only needed to read a
    ``Retry-After`` given as an HTTP-date.
    """
    why = _retryable(outcome)
    if why is None:
        return Decision(False, 0.0, f"HTTP {outcome.status} is not retryable")
    if attempt >= policy.max_attempts:
        return Decision(False, 0.0, f"{why}; gave up after {attempt} attempts")
    delay = None
    if outcome.status == 429:
        delay = parse_retry_after(outcome.retry_after, now or datetime.now(timezone.utc))
    if delay is not None:
        delay = min(delay, policy.retry_after_cap)
        why = f"{why}, Retry-After {delay:g}s"
    else:
        delay = backoff_delay(attempt, policy, rng or random.Random())
    if time_left is not None and delay > time_left:
        return Decision(False, 0.0, f"{why}; the call's deadline leaves no time to retry")
    return Decision(True, delay, why)


@dataclass
class Budget:
    """The attempts made and the monotonic deadline of one logical call (shared by its retries)."""

    deadline: float
    attempts: int = 0
