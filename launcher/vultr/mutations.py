"""Mutating calls that stay safe when the network lies about whether they happened.

The transport retries a mutation only after failures that prove the server did not act
(connection refused, 429). After an *ambiguous* failure (read timeout, dropped connection, 5xx)
it raises :class:`UnconfirmedWriteError`, and one of the functions here settles the question
by reading, never by blindly sending the mutation again:

- :func:`create_resolved`: look the resource up (by label, tag or description). Found: that is
  the result, no duplicate is bought. Not found: send the create again (the same retry budget).
  The look-up failing: :class:`AmbiguousCreateError` saying what to check.
- :func:`delete_idempotent`: send the DELETE again; a 404 then means the first one worked.
- :func:`post_confirmed`: for attach/detach, re-read the resource; if it already shows the
  change, done; otherwise send the request again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from launcher.errors import (
    AmbiguousCreateError,
    ApiError,
    LauncherError,
    NotFoundError,
    TransientError,
)

from .envelope import UnconfirmedWriteError
from .jsonhttp import JsonHttp
from .retry import Budget

log = logging.getLogger("launcher.vultr")
T = TypeVar("T")


def _settle(http: JsonHttp, err: UnconfirmedWriteError, budget: Budget) -> bool:
    """Wait as the policy says after an ambiguous failure; return whether a retry is allowed."""
    decision = http.decide(err.outcome, budget)
    # Waiting before the read-back also gives the server time to make a new resource visible.
    http.pause(decision.delay)
    return decision.retry


def _gave_up(err: UnconfirmedWriteError, budget: Budget, what: str) -> TransientError:
    return TransientError(
        f"{err.api_message}; gave up after {budget.attempts} attempts, {what}",
        method=err.method,
        path=err.path,
        status=err.status,
    )


def create_resolved(
    http: JsonHttp,
    path: str,
    body: dict[str, Any],
    *,
    key: str,
    lookup: Callable[[], dict | None],
    what: str,
    expect: tuple[int, ...] = (201, 202),
    method: str = "POST",
) -> dict:
    """POST a create and return the created object (``response[key]``), never a duplicate.

    ``lookup`` finds the object the create would have made (read-only, retried by the
    transport) and returns its dict or None. ``what`` names it for messages, e.g.
    ``"instance labelled 'run-42'"``. ``key=""`` takes the whole answer for the object (an
    API that answers a create with ids, not the object); ``method`` is the create's verb
    (sent as a non-idempotent request whatever it is).
    """
    budget = http.new_budget()
    while True:
        try:
            data = http.request(
                method, path, json=body, expect=expect, idempotent=False, budget=budget
            )
            return _created(data, key, method, path)
        except UnconfirmedWriteError as err:
            may_retry = _settle(http, err, budget)
            found = _look_up(lookup, err, what, http.PROVIDER)
            if found is not None:
                log.debug("%s %s: ambiguous failure resolved by look-up (found)", method, path)
                return found
            if not may_retry:
                raise _gave_up(err, budget, f"and no {what} exists") from None
            log.debug("%s %s: ambiguous failure, look-up found nothing, sending again",
                      method, path)


def _created(data: dict | None, key: str, method: str, path: str) -> dict:
    obj = (data or {}).get(key) if key else data
    if not isinstance(obj, dict):
        what = repr(key) if key else "a JSON object"
        raise TransientError(f"the create answered without {what}", method=method, path=path)
    return obj


def _look_up(
    lookup: Callable[[], dict | None], err: UnconfirmedWriteError, what: str, provider: str
) -> dict | None:
    return _read_back(
        lookup, err, AmbiguousCreateError,
        f"the create may have succeeded, and looking for the {what} failed too",
        hint=f"list your {provider} resources and look for the {what} before trying again, "
        "so as not to pay for two",
    )


def _read_back(
    read: Callable[[], T],
    err: UnconfirmedWriteError,
    error: type[TransientError],
    doubt: str,
    hint: str,
) -> T:
    """``read()``; if it fails too, raise ``error`` saying what may or may not have happened."""
    failure: LauncherError | None = None
    try:
        return read()
    except LauncherError as exc:
        failure = exc
    raise error(
        f"{err.api_message}; {doubt} ({type(failure).__name__}: {failure.message})",
        method=err.method,
        path=err.path,
        status=err.status,
        hint=hint,
    )


def delete_idempotent(http: JsonHttp, path: str, expect: tuple[int, ...] = (204,)) -> bool:
    """DELETE ``path``; True if it existed, False if it was already gone. Gone is success."""
    budget = http.new_budget()
    maybe_done = False
    while True:
        try:
            http.request("DELETE", path, expect=expect, idempotent=False, budget=budget)
            return True
        except NotFoundError:
            return maybe_done  # after an ambiguous failure, a 404 means our DELETE worked
        except UnconfirmedWriteError as err:
            maybe_done = True
            if not _settle(http, err, budget):
                raise _gave_up(err, budget, "the resource may still exist") from None


def post_confirmed(
    http: JsonHttp,
    path: str,
    body: dict[str, Any],
    *,
    confirm: Callable[[], bool],
    what: str,
) -> None:
    """POST a state change (attach, detach); after an ambiguous failure ``confirm()`` reads the
    resource back, and only if the change is not visible is the POST sent again."""
    budget = http.new_budget()
    while True:
        try:
            http.request("POST", path, json=body, expect=(204,), idempotent=False, budget=budget)
            return
        except UnconfirmedWriteError as err:
            may_retry = _settle(http, err, budget)
            if _confirmed(confirm, err, what):
                log.debug("POST %s: ambiguous failure resolved by read-back (done)", path)
                return
            if not may_retry:
                raise _gave_up(err, budget, f"and {what} has not happened") from None


def _confirmed(confirm: Callable[[], bool], err: UnconfirmedWriteError, what: str) -> bool:
    return _read_back(
        confirm, err, TransientError,
        f"{what} may have happened, and reading it back failed",
        hint=f"check whether {what} happened before trying again",
    )


def only(matches: list[dict], what: str, kind: str = "resources") -> dict | None:
    """A create's look-up: the one match, None for none; more than one is an error naming
    them all (``<n> <kind> match the <what>``)."""
    if len(matches) > 1:
        ids = ", ".join(str(m.get("id")) for m in matches)
        raise ApiError(f"{len(matches)} {kind} match the {what}: {ids}")
    return matches[0] if matches else None
