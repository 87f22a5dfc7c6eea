"""The one table of retry rules both Vultr clients follow, and Vultr's words they match:
standard library only.

The launcher's client (``launcher/vultr/retry.py`` and ``transport.py``, over ``requests``)
and the instance's own (:mod:`launcher.runner.vultr`, over ``urllib``) read them from here;
only the transports differ. :func:`retry_reason` (which failures retry),
:func:`may_have_acted` and :func:`may_repeat` (no blind repeat of a non-idempotent request),
:func:`parse_retry_after`, :func:`backoff_delay` and :func:`decide`, under one
:class:`RetryPolicy`. They follow Vultr's own Go client: retry 429 (honouring
``Retry-After``, capped), connection errors, timeouts and 5xx except 501; never another 4xx,
except "Server is currently locked", which Vultr answers (as a 400, or a 500) while an
attach, detach or boot settles, for a client that reads the error text (the instance's; the
launcher's provider waits a lock out a level up). Travels in the bootstrap (``boot.pyz``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Literal, Protocol

# Vultr's own words, as its own clients match them (docs/emulator.md, "Wording", cites each):
# an instance busy with an attach, detach or boot;
LOCKED = ("currently locked", "is locked")
# a detach of a volume that is not attached;
NOT_ATTACHED = ("not currently attached", "attachment not found", "not attached")
# an instance that is gone or going (also answered as a 400, not only as a 404).
GONE = ("instance not found", "invalid instance id", "pending destruction")


def says(text: str, phrases: tuple[str, ...]) -> bool:
    """Whether ``text`` holds one of ``phrases`` (case ignored)."""
    lowered = text.lower()
    return any(phrase in lowered for phrase in phrases)


# Methods the HTTP standard makes idempotent: after a failure that may have acted on the
# server, only these (or a request its caller declares safe to repeat) are sent again.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
JITTERS = ("full", "equal", "none")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one call tries: at most ``max_attempts`` attempts (None: as many as the
    deadline allows) within ``deadline_s``, retries and waits included; between them a capped
    exponential backoff (``base_delay`` doubling up to ``max_delay``) with ``jitter``, or a
    429's ``Retry-After`` up to ``retry_after_cap``."""

    max_attempts: int | None = 5
    base_delay: float = 1.0
    max_delay: float = 20.0
    retry_after_cap: float = 60.0
    jitter: Literal["full", "equal", "none"] = "equal"
    deadline_s: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min(self.base_delay, self.max_delay, self.retry_after_cap, self.deadline_s) < 0:
            raise ValueError("delays and deadline must not be negative")
        if self.jitter not in JITTERS:
            raise ValueError(f"unknown jitter {self.jitter!r}")


@dataclass(frozen=True)
class Decision:
    retry: bool
    delay: float
    reason: str


class Rng(Protocol):
    def random(self) -> float: ...


def retry_reason(status: int | None, error_text: str = "",
                 failure: str | None = None) -> str | None:
    """Why a failed attempt may be tried again, or None when it must not be. ``failure`` names
    a failure without an HTTP status (``status`` None or 0: no answer at all); ``error_text``
    is Vultr's error message, read only for a locked instance (a client that passes none, as
    the launcher's transport, leaves the lock to its caller)."""
    if failure is not None or not status:
        return failure or "no answer"
    if status == 429:
        return "rate limited (HTTP 429)"
    if status >= 500 and status != 501:
        return f"server error (HTTP {status})"
    if error_text and says(error_text, LOCKED):
        return f"instance is locked (HTTP {status})"
    return None


def may_have_acted(status: int | None, *, no_answer_after_send: bool = False) -> bool:
    """Whether a failed attempt may have taken effect: it went out and no answer came, or
    the answer was a 5xx other than 501."""
    if no_answer_after_send:
        return True
    return status is not None and status >= 500 and status != 501


def may_repeat(method: str, idempotent: bool | None, acted: bool) -> bool:
    """Whether a failed request may be sent again: always when it cannot have acted, else
    only when it is idempotent (``idempotent`` None: as its method says; a POST is not)."""
    if not acted:
        return True
    return method.upper() in IDEMPOTENT_METHODS if idempotent is None else idempotent


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


def backoff_delay(attempt: int, policy: RetryPolicy, rng: Rng) -> float:
    """Exponential backoff after failed attempt number ``attempt`` (1-based), with jitter."""
    ceiling = min(policy.max_delay, policy.base_delay * 2 ** max(attempt - 1, 0))
    if policy.jitter == "full":
        return ceiling * rng.random()
    if policy.jitter == "equal":
        return ceiling / 2 + (ceiling / 2) * rng.random()
    return ceiling


def decide(status: int | None, attempt: int, policy: RetryPolicy, rng: Rng | None = None, *,
           failure: str | None = None, error_text: str = "", retry_after: str | None = None,
           time_left: float | None = None, now: datetime | None = None) -> Decision:
    """Whether to retry after failed attempt number ``attempt`` (1-based), and after how long:
    a 429's usable ``Retry-After`` (capped), else the backoff.

    ``time_left`` is what remains of the call's deadline (None: unbounded); a retry whose
    delay would pass it is refused. ``now`` (wall clock, UTC) is only needed to read a
    ``Retry-After`` given as an HTTP-date."""
    why = retry_reason(status, error_text, failure)
    if why is None:
        return Decision(False, 0.0, f"HTTP {status} is not retryable")
    if policy.max_attempts is not None and attempt >= policy.max_attempts:
        return Decision(False, 0.0, f"{why}; gave up after {attempt} attempts")
    delay = None
    if status == 429:
        delay = parse_retry_after(retry_after, now or datetime.now(timezone.utc))
    if delay is not None:
        delay = min(delay, policy.retry_after_cap)
        why = f"{why}, Retry-After {delay:g}s"
    else:
        delay = backoff_delay(attempt, policy, rng or random.Random())
    if time_left is not None and delay > time_left:
        return Decision(False, 0.0, f"{why}; the call's deadline leaves no time to retry")
    return Decision(True, delay, why)
