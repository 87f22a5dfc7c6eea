"""The one request path of the launcher's API clients: session, auth, timeouts, retries,
errors, pages.

:class:`JsonHttp` is that path; a provider's client is a subclass that says how its errors
read and where its URLs go (``launcher.vultr.transport.VultrHttp``,
``launcher.vast.transport.VastHttp``).
Every call goes through :meth:`JsonHttp.request` (or its siblings for arrays and text). What it
promises:

- a ``(connect, read)`` timeout on every request and a deadline on every attempt (a server
  that drips its answer defeats a per-read timeout: :mod:`.cutoff` cuts the connection), the
  whole call bounded by the retry policy's ``deadline_s``; redirects never followed;
- while a call waits, a line on stderr every few seconds names what it waits for and on which
  ``host:port`` (:class:`~launcher.waiting.Watch`);
- the API key leaves the :class:`~launcher.secrets.Secret` only to build one request's
  ``Authorization`` header, and never appears in a repr, a log line or an exception;
- failures become :mod:`launcher.errors` exceptions whose text is method, path (no query),
  status and the server's scrubbed message, never headers or request bodies; one that got no
  answer names the server's ``host:port``, the attempts and the seconds they took;
- exceptions are raised outside any ``except`` block, so no ``requests`` exception (which holds
  the prepared request and its headers) hangs off them as ``__cause__`` or ``__context__``;
- retries follow the one table of retry rules (:mod:`launcher.runner.retry`, read through
  :func:`~launcher.vultr.retry.retry_decision`); a non-idempotent request (a POST unless told
  otherwise) is never repeated after an ambiguous failure, it raises
  :class:`~launcher.vultr.envelope.UnconfirmedWriteError` for the caller to resolve.
"""

from __future__ import annotations

import json as jsonlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import quote

import requests

from launcher import __version__
from launcher.errors import ApiError, ConfigError
from launcher.runner.retry import may_repeat
from launcher.secrets import Secret
from launcher.waiting import ProgressLines, Watch, endpoint

from .cutoff import cut, cuttable_session, tracking
from .envelope import (
    UnconfirmedWriteError,
    error_for_failure,
)
from .failures import Broken, broken, classify
from .retry import Budget, Decision, FailureKind, Outcome, RetryPolicy, Rng, retry_decision
from .retry import parse_retry_after as _parse_retry_after

USER_AGENT = f"launcher/{__version__}"
MIN_ATTEMPT_S = 1.0  # an attempt started near the call's deadline still gets this long

log = logging.getLogger("launcher.vultr")
H = TypeVar("H", bound="JsonHttp")
Params = Mapping[str, Any] | str | None  # a str is a query sent as it is (a signed URL's)


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait for a connection, once connected between bytes of the answer, and for
    one attempt in all (a server that drips bytes never trips ``read``)."""

    connect: float = 5.0
    read: float = 30.0
    attempt: float = 60.0

    def __post_init__(self) -> None:
        if not min(self.connect, self.read, self.attempt) > 0:
            raise ValueError("timeouts must be positive")


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    retry_after: str | None


def _outcome(result: _Answer | FailureKind) -> Outcome:
    if isinstance(result, FailureKind):
        return Outcome(failure=result)
    return Outcome(status=result.status, retry_after=result.retry_after)


class JsonHttp:
    """One ``requests.Session`` to one API and the one request method over it.

    A subclass names the provider and reads its error bodies (:meth:`_status_error`); it may
    route paths (:meth:`_url`). ``sleep``, ``clock`` (monotonic) and ``rng`` are injectable
    so tests never really wait.
    """

    DEFAULT_URL = ""  # a subclass names its API's; without one, base_url is required
    KEY_VARIABLE = "API_KEY"  # the variable that holds the key, for messages
    URL_VARIABLE = "API_URL"
    PROVIDER = "the provider's"
    KEY_HINT = "<key>"

    def __init__(
        self,
        api_key: Secret | None = None,
        *,
        base_url: str | None = None,
        timeouts: Timeouts | None = None,
        policy: RetryPolicy | None = None,
        key_variable: str | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Rng | None = None,
        progress: ProgressLines | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        if api_key is not None and not isinstance(api_key, Secret):
            raise TypeError("api_key must be a launcher.secrets.Secret")
        self._key = api_key if api_key else None
        self._key_variable = key_variable or self.KEY_VARIABLE
        self.base_url = (base_url or self.DEFAULT_URL).rstrip("/")
        if not self.base_url:
            raise ValueError("base_url is required")
        self.endpoint = endpoint(self.base_url)
        self.timeouts = timeouts or Timeouts()
        self.policy = policy or RetryPolicy()
        self.progress = progress or ProgressLines()
        self._session = session or cuttable_session()
        self.sleep = sleep
        self.clock = clock
        self._rng = rng or random.Random()
        self.log = logger or log

    def __repr__(self) -> str:
        key = "set" if self._key else "missing"
        return f"{type(self).__name__}(base_url={self.base_url!r}, key={key})"

    def close(self) -> None:
        self._session.close()

    def with_key(self: H, api_key: Secret | None, key_variable: str) -> H:
        """A new session to the same API with the same timeouts, retries and clocks, holding
        another key (named ``key_variable`` in errors): the instance's, which the launcher
        proves before a launch. Close it when done."""
        return self._sibling(self.base_url, api_key, key_variable)

    def with_base(self: H, base_url: str) -> H:
        """A new session, holding no key, to another host (a download link the API handed
        out) with the same timeouts, retries and clocks. Close it when done."""
        return self._sibling(base_url, None, self._key_variable)

    def _sibling(self: H, base_url: str, api_key: Secret | None, key_variable: str) -> H:
        return type(self)(api_key, base_url=base_url, timeouts=self.timeouts,
                          policy=self.policy, key_variable=key_variable, sleep=self.sleep,
                          clock=self.clock, rng=self._rng, progress=self.progress,
                          logger=self.log)

    def __enter__(self: H) -> H:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def new_budget(self) -> Budget:
        """A fresh attempt count and deadline for one logical call (shared across its retries)."""
        return Budget(deadline=self.clock() + self.policy.deadline_s)

    def decide(self, outcome: Outcome, budget: Budget) -> Decision:
        """:func:`retry_decision` for the attempt just counted in ``budget``."""
        return retry_decision(
            outcome,
            budget.attempts,
            self.policy,
            self._rng,
            time_left=budget.deadline - self.clock(),
            now=datetime.now(timezone.utc),
        )

    def pause(self, seconds: float) -> None:
        if seconds > 0:
            self.sleep(seconds)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        json: Any = None,
        expect: tuple[int, ...] = (200,),
        idempotent: bool | None = None,
        auth: bool = True,
        budget: Budget | None = None,
    ) -> dict | None:
        """Send one API call, retrying per policy; return the decoded JSON object (None if empty).

        ``path`` is relative to the base URL and carries no query (use ``params``). With
        ``auth=False`` no key is sent (public endpoints). ``idempotent=False`` marks a mutation
        (None, the default: as the method says, so a POST is one): it is still retried after
        failures that prove it was not acted on (connect errors, 429), but an ambiguous failure
        raises :class:`UnconfirmedWriteError` at once. Any 2xx is a
        success; one outside ``expect`` is logged. ``budget`` lets several requests share one
        retry budget.
        """
        answer = self._call(method, path, params, json, expect, idempotent, auth, budget)
        return self._json(method, path, answer, dict)  # type: ignore[return-value]

    def request_json(self, method: str, path: str, **options: Any) -> dict | list | None:
        """:meth:`request` for an endpoint that may answer a JSON array as well as an object."""
        answer = self._call(method, path, options.get("params"), options.get("json"),
                            options.get("expect", (200,)), options.get("idempotent"),
                            options.get("auth", True), options.get("budget"))
        return self._json(method, path, answer, (dict, list))  # type: ignore[return-value]

    def request_text(self, method: str, path: str, *, params: Params = None,
                     auth: bool = True) -> str:
        """:meth:`request` for an endpoint that answers text (UTF-8, undecodable bytes
        replaced)."""
        answer = self._call(method, path, params, None, (200,), None, auth, None)
        return answer.body.decode("utf-8", errors="replace")

    def _call(
        self, method: str, path: str, params: Params, json: Any, expect: tuple[int, ...],
        idempotent: bool | None, auth: bool, budget: Budget | None,
    ) -> _Answer:
        """The retry loop: the first 2xx answer, or the exception for the last failure."""
        if not path.startswith("/") or "?" in path:
            raise ValueError(f"path must start with '/' and carry no query: {path!r}")
        headers = self._headers(auth)
        budget = budget or self.new_budget()
        with Watch(f"{self.endpoint} ({method} {path})", self.progress) as watch:
            while True:
                budget.attempts += 1
                result = self._attempt(method, path, (params, json, headers), budget, watch)
                if isinstance(result, _Answer) and 200 <= result.status < 300:
                    self._check_expected(method, path, result, expect)
                    return result
                self.pause(self._after_failure(method, path, result, idempotent, budget))

    def _after_failure(
        self,
        method: str,
        path: str,
        result: _Answer | FailureKind | Broken,
        idempotent: bool | None,
        budget: Budget,
    ) -> float:
        """The wait before the next attempt; raises when there must be no next attempt."""
        if isinstance(result, Broken):
            what = result.detail or f"request failed ({result.name})"
            raise ApiError(f"{what}; not retried", method=method, path=path, hint=result.hint)
        outcome = _outcome(result)
        if not may_repeat(method, idempotent, outcome.ambiguous):
            first = self._error(method, path, result, 1)
            raise UnconfirmedWriteError(
                first.api_message, outcome=outcome, method=method, path=path, status=outcome.status
            )
        decision = self.decide(outcome, budget)
        if not decision.retry:
            started = budget.deadline - self.policy.deadline_s
            raise self._error(method, path, result, budget.attempts, self.clock() - started)
        self.log.debug(
            "retry %s %s in %.2fs (attempt %d)", method, path, decision.delay, budget.attempts
        )
        return decision.delay

    @property
    def has_key(self) -> bool:
        """Whether this session holds an API key (never the key itself)."""
        return self._key is not None

    def _headers(self, auth: bool) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if auth:
            if self._key is None:
                raise ConfigError(
                    f"{self._key_variable} is not set: this call needs a {self.PROVIDER} API "
                    "key", hint=f"export {self._key_variable}={self.KEY_HINT}",
                )
            headers["Authorization"] = f"Bearer {self._key.reveal()}"
        return headers

    def _url(self, path: str) -> str:
        """The URL of ``path`` (relative to the base URL unless a subclass routes it)."""
        return self.base_url + path

    def _attempt(
        self,
        method: str,
        path: str,
        payload: tuple[Params, Any, dict[str, str]],
        budget: Budget,
        watch: Watch,
    ) -> _Answer | FailureKind | Broken:
        """One HTTP exchange, cut off at the attempt's deadline (``timeouts.attempt``, at
        most what the call's budget has left). Returns instead of raising, so no requests
        exception escapes."""
        started = time.monotonic()
        limit = min(self.timeouts.attempt, max(budget.deadline - self.clock(), MIN_ATTEMPT_S))
        with tracking() as connections:
            watch.arm(limit, lambda: cut(connections))
            try:
                result = self._exchange(method, path, payload)
            finally:
                watch.disarm()
        if watch.expired and not isinstance(result, Broken):
            # Cut mid-answer, http.client may even take what arrived for a whole answer.
            result = FailureKind.DEADLINE
        if isinstance(result, _Answer):
            status: object = result.status
        else:
            status = result.value if isinstance(result, FailureKind) else result.name
        self.log.debug("%s %s -> %s in %.3fs (attempt %d)", method, path, status,
                       time.monotonic() - started, budget.attempts)
        return result

    def _exchange(
        self, method: str, path: str, payload: tuple[Params, Any, dict[str, str]]
    ) -> _Answer | FailureKind | Broken:
        params, json, headers = payload
        try:
            response = self._session.request(
                method,
                self._url(path),
                params=params,
                json=json,
                headers=headers,
                timeout=(self.timeouts.connect, self.timeouts.read),
                allow_redirects=False,
            )
            body = response.content
        except requests.RequestException as exc:
            kind = classify(exc)
            return kind if kind is not None else self._broken(exc)
        return _Answer(response.status_code, body, response.headers.get("Retry-After"))

    def _broken(self, exc: requests.RequestException) -> Broken:
        found = broken(exc, self.endpoint, self.base_url)
        if found.hint:  # failures.broken words its hint for Vultr's variable
            return replace(found, hint=found.hint.replace("VULTR_API_URL", self.URL_VARIABLE))
        return found

    def _check_expected(
        self, method: str, path: str, answer: _Answer, expect: tuple[int, ...]
    ) -> None:
        if answer.status not in expect:
            self.log.warning(
                "%s %s answered HTTP %d, expected %s",
                method,
                path,
                answer.status,
                "/".join(map(str, expect)),
            )

    def _json(self, method: str, path: str, answer: _Answer,
              kinds: type | tuple[type, ...]) -> object:
        if not answer.body.strip():
            return None
        try:
            data = jsonlib.loads(answer.body)
        except ValueError:
            data = None
        if not isinstance(data, kinds):
            what = "a JSON object" if kinds is dict else "a JSON object or array"
            raise ApiError(f"the response is not {what}", method=method, path=path,
                           status=answer.status)
        return data

    def _error(
        self, method: str, path: str, result: _Answer | FailureKind, attempts: int,
        seconds: float | None = None,
    ) -> ApiError:
        if isinstance(result, FailureKind):
            return error_for_failure(
                method, path, result, attempts, where=self.endpoint, seconds=seconds,
                hint=f"check {self.URL_VARIABLE} ({self.base_url}) and this machine's network")
        retry_after = _parse_retry_after(result.retry_after, datetime.now(timezone.utc))
        return self._status_error(method, path, result, attempts, retry_after)

    def _status_error(self, method: str, path: str, answer: _Answer, attempts: int,
                      retry_after: float | None) -> ApiError:
        """The exception for an HTTP error answer, as the provider's error bodies read."""
        raise NotImplementedError


def seg(value: int | str) -> str:
    """One path segment; an id can never add a segment or a query."""
    if not str(value):
        raise ValueError("an empty id cannot name a resource")
    return quote(str(value), safe="")
