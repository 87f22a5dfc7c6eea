"""Which failed calls are worth trying again, and after how long: the launcher's side of the
one table of retry rules.

The rules live in :mod:`launcher.runner.retry` (standard library), which the instance's own
client follows too: retry 429 (honouring ``Retry-After``), connection errors, timeouts and 5xx
except 501; never another 4xx; after a failure that may have acted, repeat only what is
idempotent. Here they are read through the launcher's failure kinds: :func:`retry_decision`
is a pure function of one failed attempt (no sessions, sleeps or clocks), tested as a table.

Whether a failure is *ambiguous* (the server may have acted on the request) is a separate
question, answered by :attr:`Outcome.ambiguous`; the transport uses it to keep mutating calls
from being repeated blindly.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from launcher.runner.retry import (
    Decision,
    RetryPolicy,
    Rng,
    backoff_delay,
    decide,
    may_have_acted,
    parse_retry_after,
)

__all__ = ["Budget", "Decision", "FailureKind", "Outcome", "RetryPolicy", "Rng",
           "backoff_delay", "parse_retry_after", "retry_decision"]


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
        sent = self.failure is not None and self.failure is not FailureKind.CONNECT
        return may_have_acted(self.status, no_answer_after_send=sent)


def retry_decision(
    outcome: Outcome,
    attempt: int,
    policy: RetryPolicy,
    rng: Rng | None = None,
    *,
    time_left: float | None = None,
    now: datetime | None = None,
) -> Decision:
    """Decide whether to retry after failed attempt number ``attempt`` (1-based), per
    :func:`launcher.runner.retry.decide`.

    ``time_left`` is what remains of the call's deadline (None: unbounded); a retry whose
    delay would pass it is refused. ``now`` (wall clock, UTC) is only needed to read a
    ``Retry-After`` given as an HTTP-date. No error text is passed: a locked instance is not
    retried here, it becomes a ``ConflictError`` that the provider waits out.
    """
    failure = outcome.failure.value if outcome.failure is not None else None
    return decide(outcome.status, attempt, policy, rng, failure=failure,
                  retry_after=outcome.retry_after, time_left=time_left, now=now)


@dataclass
class Budget:
    """The attempts made and the monotonic deadline of one logical call (shared by its retries)."""

    deadline: float
    attempts: int = 0
