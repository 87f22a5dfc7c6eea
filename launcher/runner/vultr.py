"""Just enough of the Vultr API for an instance to remove itself: standard library only.

:class:`SelfApi` reads and deletes the run's block volume and instance. Every call has a
timeout and a monotonic deadline. Every call here is safe to repeat: a detach of a detached
volume and a delete of something already gone count as done, in each wording Vultr has used
for them. The API key only ever travels in the ``Authorization`` header: it is in no
exception, log line or ``repr``.

Which failures retry, and how long to wait, is the one table both Vultr clients follow
(:mod:`launcher.runner.retry`).

:func:`remove_block` detaches, waits and deletes a volume. :func:`instance_id` answers "which
instance am I": the metadata service's ``instance-v2-id``, else the one instance tagged
``run:<run_id>``. Imports nothing of the runner but :mod:`launcher.runner.retry` and
:mod:`launcher.runner.tools`: all three travel in the bootstrap (``boot.pyz``).
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from launcher.runner.retry import (
    GONE,
    NOT_ATTACHED,
    RetryPolicy,
    decide,
    may_have_acted,
    may_repeat,
    retry_reason,
    says,
)
from launcher.runner.tools import retry_until

USER_AGENT = "launcher/runner"
MAX_PAGES = 50
# The metadata service is link-local: never ask it through a proxy from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# Vultr's answers to a key it does not accept (wrong, revoked, or used from an address its
# API access control leaves out): never retried.
REFUSED = (401, 403)


class ApiError(RuntimeError):
    """A call failed for good. ``status`` is the HTTP status (0: no answer); the message holds
    the method, path, status and Vultr's error text — never the key."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


# -- the runner's client ----------------------------------------------------------------------

# Every call an instance makes about itself tries as often as its deadline allows: a lock can
# take minutes to clear, and nobody is there to try again.
SELF_POLICY = RetryPolicy(max_attempts=None)


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    retry_after: str | None = None


def refusal_note(exc: BaseException) -> str:
    """Said after a left-behind line when the instance's own key was refused, else ""."""
    if getattr(exc, "status", 0) not in REFUSED:
        return ""
    return f" (this instance's key was refused: {exc}; use a key that may delete it)"


def _error_text(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    return ""


def _transport_failure(exc: BaseException) -> bool:
    """True for a failure to reach the server or read its answer (worth retrying).

    ``http.client``'s own errors (a truncated body, a bad status line) are not OSErrors; they
    are recognised by module so that this file need not import the HTTP layer by name."""
    return isinstance(exc, (OSError, EOFError)) or type(exc).__module__ == "http.client"


class SelfApi:
    """The calls a runner needs to delete its own volume and instance."""

    def __init__(self, api_url: str, key: str, timeout: float = 30.0,
                 policy: RetryPolicy | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        scheme = urllib.parse.urlsplit(api_url).scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"api_url must be http(s), not {scheme!r}")
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.policy = policy or SELF_POLICY
        self._key = key
        self.clock = clock
        self.sleep = sleep
        self._rng = random.Random()

    def __repr__(self) -> str:
        return f"SelfApi({self.api_url!r}, key={'set' if self._key else 'unset'})"

    # -- the calls ------------------------------------------------------------------------

    def get_block(self, block_id: str) -> dict:
        """The block record (``attached_to_instance`` is "" when detached)."""
        return self.request("GET", f"/blocks/{_seg(block_id)}")["block"]

    def detach_block(self, block_id: str, live: bool = True) -> None:
        """Detach; a volume that is not attached is already where we want it."""
        try:
            self.request("POST", f"/blocks/{_seg(block_id)}/detach", {"live": live},
                         idempotent=True)
        except ApiError as exc:
            if 400 <= exc.status < 500 and says(str(exc), NOT_ATTACHED):
                return
            raise

    def delete_block(self, block_id: str) -> bool:
        """Delete; False when it was already gone (404)."""
        return self._delete(f"/blocks/{_seg(block_id)}")

    def delete_instance(self, instance_id: str) -> bool:
        """Delete; False when it was already gone (404, or a 400 saying it is gone)."""
        return self._delete(f"/instances/{_seg(instance_id)}")

    def list_instances(self, tag: str) -> list[dict]:
        """Every instance carrying ``tag``, all pages (bounded)."""
        return self.pages("/instances", "instances", {"tag": tag})

    def pages(self, path: str, key: str, query: dict[str, str] | None = None) -> list[dict]:
        """Every item under ``key`` of ``GET path``, all pages (bounded)."""
        found: list[dict] = []
        cursor = ""
        for _ in range(MAX_PAGES):
            page = {**(query or {}), "per_page": "100"} | ({"cursor": cursor} if cursor else {})
            body = self.request("GET", f"{path}?" + urllib.parse.urlencode(page))
            found += body.get(key, [])
            cursor = ((body.get("meta") or {}).get("links") or {}).get("next") or ""
            if not cursor:
                return found
        raise ApiError(f"GET {path}: more than {MAX_PAGES} pages")

    def _delete(self, path: str) -> bool:
        try:
            self.request("DELETE", path)
        except ApiError as exc:
            if exc.status == 404 or (exc.status == 400 and says(str(exc), GONE)):
                return False
            raise
        return True

    # -- the one request method -----------------------------------------------------------

    def request(self, method: str, path: str, body: dict | None = None, *,
                idempotent: bool | None = None) -> Any:
        """One call with retries per the shared rules until the policy's deadline; the decoded
        JSON body (None for 204). ``idempotent``: whether the call is safe to repeat after a
        failure that may have acted (None: as its method says). Raises :class:`ApiError` when
        it fails for good."""
        deadline = self.clock() + self.policy.deadline_s
        attempt = 0
        while True:
            attempt += 1
            answer = self._send(method, path, body)
            if 200 <= answer.status < 300:
                return answer.body
            text = _error_text(answer.body)
            failure = f"{method} {path.split('?')[0]}: {answer.status or 'no answer'} {text}"
            failure = failure.rstrip()
            why = retry_reason(answer.status, text)
            if why is None:
                raise ApiError(failure, answer.status)
            acted = may_have_acted(answer.status, no_answer_after_send=not answer.status)
            if not may_repeat(method, idempotent, acted):
                raise ApiError(f"{failure} (not repeated: it may have been acted on)",
                               answer.status)
            decision = decide(answer.status, attempt, self.policy, self._rng, error_text=text,
                              retry_after=answer.retry_after,
                              time_left=deadline - self.clock())
            if not decision.retry:
                raise ApiError(f"{failure} (gave up after {attempt} attempts: {why})",
                               answer.status)
            self.sleep(decision.delay)

    def _send(self, method: str, path: str, body: dict | None) -> Answer:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self._key}", "User-Agent": USER_AGENT,
                   "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        # The scheme was checked to be http(s) in __init__.
        req = urllib.request.Request(self.api_url + path, data=data, method=method,  # noqa: S310
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                return Answer(resp.status, _decode(resp.read()))
        except urllib.error.HTTPError as exc:
            with exc:
                raw = _read_quietly(exc)
            return Answer(exc.code, _decode(raw), exc.headers.get("Retry-After"))
        except Exception as exc:
            if not _transport_failure(exc):
                raise
            return Answer(0, {"error": type(exc).__name__})


def _read_quietly(exc: urllib.error.HTTPError) -> bytes:
    try:
        return exc.read()
    except Exception as inner:
        if _transport_failure(inner):
            return b""
        raise


def _decode(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return {"error": "(not JSON)"}


def _seg(value: str) -> str:
    """An id as one path segment (ids are ours, but never let one change the path)."""
    return urllib.parse.quote(value, safe="")


def remove_block(api: SelfApi, block_id: str, *, wait_s: float, poll_s: float) -> bool:
    """Detach ``block_id`` live, wait until Vultr shows it detached (attach and detach are
    asynchronous), then delete it. False when it was already gone. Raises
    :class:`ApiError`, or TimeoutError when it stays attached for ``wait_s``."""
    try:
        api.detach_block(block_id, live=True)
        retry_until(lambda: not api.get_block(block_id).get("attached_to_instance"),
                    deadline_s=wait_s, what=f"detach of volume {block_id}",
                    first_delay=poll_s / 4, max_delay=poll_s, clock=api.clock, sleep=api.sleep)
    except ApiError as exc:
        if exc.status != 404:
            raise
        return False
    return api.delete_block(block_id)


# -- which instance am I ----------------------------------------------------------------------

def metadata_document(metadata_url: str, *, want: str, timeout: float = 5.0,
                      deadline_s: float = 20.0, clock: Callable[[], float] = time.monotonic,
                      sleep: Callable[[float], None] = time.sleep) -> dict:
    """``<metadata_url>/v1.json`` as a dict holding the key ``want``, retried (backoff) until
    ``deadline_s``; ApiError when it cannot be had."""
    url = metadata_url.rstrip("/") + "/v1.json"
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ApiError(f"metadata url must be http(s): {metadata_url!r}")
    deadline = clock() + deadline_s
    delay = 0.5
    while True:
        try:
            with _DIRECT.open(url, timeout=timeout) as resp:
                document = json.loads(resp.read())
            if isinstance(document, dict) and document.get(want):
                return document
            problem = f"no {want} in v1.json"
        except Exception as exc:
            if not (_transport_failure(exc) or isinstance(exc, (ValueError, AttributeError))):
                raise
            problem = f"{type(exc).__name__}: {exc}"
        if clock() + delay > deadline:
            raise ApiError(f"metadata {url}: {problem}")
        sleep(delay)
        delay = min(delay * 2, 5.0)


def run_tag(run_id: str) -> str:
    """The tag the launcher puts on every resource of a run."""
    return f"run:{run_id}"


def instance_by_tag(api: SelfApi, run_id: str, node_tag: str = "") -> str:
    """The id of the one instance tagged ``run:<run_id>`` (and ``node_tag`` when given: a
    node of an N-node run); ApiError if none or several."""
    found = [i for i in api.list_instances(run_tag(run_id))
             if not node_tag or node_tag in (i.get("tags") or [])]
    ids = sorted({str(i.get("id", "")) for i in found if i.get("id")})
    if len(ids) != 1:
        what = run_tag(run_id) + (f" and {node_tag}" if node_tag else "")
        raise ApiError(f"{len(ids)} instances carry tag {what}: {', '.join(ids)}")
    return ids[0]


def instance_id(metadata_url: str, api: SelfApi, run_id: str, *, node_tag: str = "",
                metadata_deadline_s: float = 20.0,
                log: Callable[[str], None] = lambda message: None) -> str:
    """This instance's API id: the metadata service first, then the run tag."""
    try:
        return str(metadata_document(metadata_url, want="instance-v2-id",
                                     deadline_s=metadata_deadline_s, clock=api.clock,
                                     sleep=api.sleep)["instance-v2-id"])
    except ApiError as exc:
        log(f"instance id: {exc}; looking it up by tag {run_tag(run_id)}")
    return instance_by_tag(api, run_id, node_tag)
