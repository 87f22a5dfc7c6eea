"""The retry rules as a table: outcome x attempt -> retry?, delay bounds, reason."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from launcher.vultr import (
    FailureKind,
    Outcome,
    RetryPolicy,
    backoff_delay,
    parse_retry_after,
    retry_decision,
)

NOW = datetime(2024, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
POLICY = RetryPolicy(
    max_attempts=5, base_delay=1.0, max_delay=8.0, retry_after_cap=30.0, jitter="none"
)
CONNECT, READ, DROP = FailureKind.CONNECT, FailureKind.READ_TIMEOUT, FailureKind.DROPPED


class FixedRng:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def status(code: int, retry_after: str | None = None) -> Outcome:
    return Outcome(status=code, retry_after=retry_after)


def failure(kind: FailureKind) -> Outcome:
    return Outcome(failure=kind)


TABLE = [
    # outcome, attempt, retry, min delay, max delay, reason contains
    (status(500), 1, True, 1, 1, "server error (HTTP 500)"),
    (status(502), 2, True, 2, 2, "HTTP 502"),
    (status(503), 3, True, 4, 4, "HTTP 503"),
    (status(504), 4, True, 8, 8, "HTTP 504"),
    (status(500), 5, False, 0, 0, "gave up after 5 attempts"),
    (status(501), 1, False, 0, 0, "HTTP 501 is not retryable"),
    (status(400), 1, False, 0, 0, "HTTP 400 is not retryable"),
    (status(401), 1, False, 0, 0, "not retryable"),
    (status(403), 1, False, 0, 0, "not retryable"),
    (status(404), 1, False, 0, 0, "not retryable"),
    (status(409), 1, False, 0, 0, "not retryable"),
    (status(422), 1, False, 0, 0, "not retryable"),
    (status(200), 1, False, 0, 0, "not retryable"),
    (status(429), 1, True, 1, 1, "rate limited"),
    (status(429, "3"), 1, True, 3, 3, "Retry-After 3s"),
    (status(429, " 2.5 "), 2, True, 2.5, 2.5, "Retry-After 2.5s"),
    (status(429, "0"), 1, True, 0, 0, "Retry-After 0s"),
    (status(429, "1000"), 1, True, 30, 30, "Retry-After 30s"),
    (status(429, "soon"), 2, True, 2, 2, "rate limited (HTTP 429)"),
    (status(429, "Mon, 01 Jan 2024 12:00:10 GMT"), 1, True, 10, 10, "Retry-After 10s"),
    (status(429, "Mon, 01 Jan 2024 11:00:00 GMT"), 1, True, 0, 0, "Retry-After 0s"),
    (status(429, "Mon, 01 Jan 2024 13:00:00 GMT"), 1, True, 30, 30, "Retry-After 30s"),
    (status(429, "3"), 5, False, 0, 0, "gave up after 5 attempts"),
    (failure(CONNECT), 1, True, 1, 1, "connect error"),
    (failure(READ), 2, True, 2, 2, "read timeout"),
    (failure(DROP), 3, True, 4, 4, "connection dropped"),
    (failure(DROP), 5, False, 0, 0, "gave up"),
]


@pytest.mark.parametrize(("outcome", "attempt", "retry", "lo", "hi", "reason"), TABLE)
def test_retry_table(outcome, attempt, retry, lo, hi, reason):
    decision = retry_decision(outcome, attempt, POLICY, FixedRng(0.5), now=NOW)
    assert decision.retry is retry
    assert lo <= decision.delay <= hi
    assert reason in decision.reason


def test_backoff_is_capped_at_max_delay():
    policy = RetryPolicy(max_attempts=50, base_delay=1.0, max_delay=8.0, jitter="none")
    assert retry_decision(status(500), 30, policy, FixedRng(0.5)).delay == 8.0


@pytest.mark.parametrize(
    ("jitter", "rng_value", "expected"),
    [
        ("none", 0.0, 4.0),
        ("full", 0.0, 0.0),
        ("full", 0.5, 2.0),
        ("full", 0.999, 3.996),
        ("equal", 0.0, 2.0),
        ("equal", 0.5, 3.0),
        ("equal", 0.999, 3.998),
    ],
)
def test_jitter_modes(jitter, rng_value, expected):
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0, jitter=jitter)
    assert backoff_delay(3, policy, FixedRng(rng_value)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("outcome", "time_left", "retry"),
    [
        (status(500), 0.5, False),  # backoff 1 s, half a second left
        (status(500), 1.0, True),
        (status(429, "10"), 5.0, False),
        (status(429, "10"), 10.0, True),
        (failure(CONNECT), None, True),
    ],
)
def test_deadline_refuses_a_retry_that_would_pass_it(outcome, time_left, retry):
    decision = retry_decision(outcome, 1, POLICY, FixedRng(0.5), time_left=time_left, now=NOW)
    assert decision.retry is retry
    if not retry:
        assert "deadline" in decision.reason


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        ("abc", None),
        ("nan", None),
        ("inf", None),
        ("5", 5.0),
        (" 7 ", 7.0),
        ("-3", 0.0),
        ("Mon, 01 Jan 2024 12:00:10 GMT", 10.0),
        ("Mon, 01 Jan 2024 12:00:10 -0000", 10.0),  # no zone given: read as UTC
        ("Mon, 01 Jan 2024 11:59:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value, seconds):
    assert parse_retry_after(value, NOW) == seconds


@pytest.mark.parametrize(
    ("outcome", "ambiguous"),
    [
        (failure(CONNECT), False),
        (failure(READ), True),
        (failure(DROP), True),
        (status(500), True),
        (status(503), True),
        (status(501), False),
        (status(429), False),
        (status(400), False),
        (Outcome(), False),
    ],
)
def test_which_failures_are_ambiguous(outcome, ambiguous):
    assert outcome.ambiguous is ambiguous


def test_decision_works_without_rng_or_clock():
    decision = retry_decision(status(503), 1, RetryPolicy(base_delay=1.0))
    assert decision.retry and 0 <= decision.delay <= 1.0


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"base_delay": -1}, {"deadline_s": -5}, {"jitter": "some"}],
)
def test_policy_rejects_nonsense(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_both_clients_read_one_table_of_rules():
    from launcher.runner import retry as rules
    from launcher.runner import vultr as runner_vultr
    from launcher.vultr import retry as launcher_retry

    for name in ("RetryPolicy", "Decision", "backoff_delay", "parse_retry_after"):
        assert getattr(launcher_retry, name) is getattr(rules, name)
    assert runner_vultr.decide is rules.decide
    for outcome, *_ in TABLE:
        text = outcome.failure.value if outcome.failure else None
        ours = retry_decision(outcome, 1, POLICY, FixedRng(0.5), now=NOW)
        theirs = rules.decide(outcome.status, 1, POLICY, FixedRng(0.5), failure=text,
                                     retry_after=outcome.retry_after, now=NOW)
        assert ours == theirs


def test_a_locked_instance_is_left_to_the_provider_not_retried_here():
    from launcher.runner.retry import decide

    assert not retry_decision(status(400), 1, POLICY).retry
    assert decide(400, 1, POLICY, error_text="Server is currently locked").retry


@pytest.mark.parametrize(
    ("method", "idempotent", "acted", "repeat"),
    [
        ("GET", None, True, True),
        ("DELETE", None, True, True),
        ("PUT", None, True, True),
        ("POST", None, True, False),
        ("PATCH", None, True, False),
        ("POST", True, True, True),
        ("GET", False, True, False),
        ("POST", None, False, True),  # never acted on (a connect error, a 429): sent again
    ],
)
def test_only_an_idempotent_request_is_repeated_after_it_may_have_acted(
        method, idempotent, acted, repeat):
    from launcher.runner.retry import may_repeat

    assert may_repeat(method, idempotent, acted) is repeat


def test_an_attempt_cap_of_none_retries_until_the_deadline():
    policy = RetryPolicy(max_attempts=None, base_delay=1.0, jitter="none")
    assert retry_decision(status(503), 100, policy, time_left=30.0).retry
    assert not retry_decision(status(503), 100, policy, time_left=10.0).retry
