"""A small wrapper around ``s5cmd``: the runner's only way to talk to the bucket.

Secrets reach s5cmd through its environment only (:mod:`launcher.runner.s5cmd`). Every error
is one line, scrubbed of the secrets, with a hint when the bucket refused the key.

s5cmd quirks this wrapper absorbs (measured with s5cmd 2.3.0):

- ``sync`` exits 0 even when the server refused the request (e.g. a 403): errors are read
  from its JSON error lines on stderr, not from the exit status.
- ``sync`` with a source that matches nothing says ``no object found`` and exits 0; with
  ``--delete`` it then empties the destination. This wrapper never passes ``--delete``:
  :mod:`launcher.runner.data` prunes stale files itself, after a non-empty listing.
- ``--log error`` silences ``ls``, so ``ls`` runs at the default level.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from launcher.runner.context import Context
from launcher.runner.s5cmd import b2_region, find_binary, s5cmd_env
from launcher.runner.spec import RunSecrets, scrub
from launcher.runner.tools import ToolError, run

AUTH_MARKERS = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden",
                "status code: 401", "status code: 403", "NoCredentialProviders")
PERMANENT_MARKERS = AUTH_MARKERS + ("NoSuchBucket", "NoSuchKey", "InvalidBucketName",
                                    "no object found", "status code: 400", "status code: 404",
                                    "not found on PATH", "cannot run")
MASTER_KEY_HINT = ("the bucket refused the key: use a B2 application key (keyID + applicationKey) "
                   "with access to this bucket; B2's master key cannot be used with the S3 API")
NO_MATCH = "no object found"
NOT_REGULAR = "is not a regular file"  # s5cmd's word for a FIFO, socket or device: no data


@dataclass(frozen=True)
class ObjectInfo:
    """One object: its key (without ``s3://bucket/``), size in bytes, and as the listing
    gave them its ``etag`` (changes whenever the object does) and ``last_modified`` text."""

    key: str
    size: int
    # Listing metadata: two listings of the same object compare equal by key and size.
    etag: str = field(default="", compare=False)
    last_modified: str = field(default="", compare=False)


@dataclass(frozen=True)
class Transfer:
    """What one s5cmd command did, from its ``--stat`` summary."""

    copied: int = 0
    failed: int = 0


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``("bucket", "key")``."""
    if not url.startswith("s3://"):
        raise ValueError(f"not an s3:// URL: {url!r}")
    bucket, _, key = url[5:].partition("/")
    return bucket, key


class S3Tool:
    """s5cmd against one endpoint with one key pair.

    ``timeout`` bounds one s5cmd call; ``deadline_s`` bounds a call and its retries together.
    Transient failures (5xx, network, timeouts) are retried with capped exponential backoff;
    refusals (auth, missing bucket or key) are raised at once as a scrubbed ``ToolError``.
    """

    def __init__(self, binary: str, endpoint_url: str, secrets: RunSecrets,
                 env_base: Mapping[str, str], timeout: float, *, region: str = "",
                 numworkers: int = 64, retry_count: int = 10, deadline_s: float | None = None,
                 attempts: int = 4, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.binary = binary
        self.endpoint_url = endpoint_url
        self.secrets = secrets
        self.env_base = dict(env_base)
        self.timeout = timeout
        self.region = region or b2_region(endpoint_url)
        self.numworkers = numworkers
        self.retry_count = retry_count
        self.deadline_s = deadline_s if deadline_s is not None else timeout * attempts
        self.attempts = attempts
        self.sleep = sleep
        self.clock = clock

    # -- what s5cmd sees -------------------------------------------------------------------

    def argv(self, *args: str, quiet: bool = True) -> list[str]:
        """The full command line for ``args``: global options, never a secret."""
        head = [self.binary, f"--endpoint-url={self.endpoint_url}", "--json",
                f"--numworkers={self.numworkers}", f"--retry-count={self.retry_count}"]
        if quiet:
            head += ["--log=error", "--stat"]
        return head + list(args)

    def env(self) -> dict[str, str]:
        """The environment s5cmd runs with: the base minus any inherited ``AWS_*``, plus
        the run's key, the region and B2's checksum settings."""
        return s5cmd_env(self.env_base, self.secrets.get("B2_KEY_ID"),
                         self.secrets.get("B2_APP_KEY"), self.region)

    # -- operations ------------------------------------------------------------------------

    def ls(self, url: str) -> list[ObjectInfo]:
        """Every object matching ``url`` (``s3://bucket/prefix/*`` lists recursively);
        an empty list when nothing matches."""
        out = self._call(["ls", url], what=f"ls {url}", quiet=False, skip=NO_MATCH)
        objects = []
        for line in out.splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict) and item.get("type") == "file" and "key" in item:
                objects.append(ObjectInfo(split_url(item["key"])[1], int(item.get("size", 0)),
                                          str(item.get("etag", "")),
                                          str(item.get("last_modified", ""))))
        return objects

    def sync_down(self, prefix_url: str, local_dir: str) -> Transfer:
        """Fetch what changed under ``prefix_url`` (ending in ``/*``) into ``local_dir``.
        s5cmd's default strategy: an object is fetched when its size differs or it is newer
        than the local file, so a same-size rewrite is fetched too (``--size-only`` would
        miss it). Nothing local is deleted."""
        return transfer_counts(self._call(["sync", prefix_url, _dir(local_dir)],
                                            what=f"sync {prefix_url}"))

    def cp_down(self, prefix_url: str, local_dir: str) -> Transfer:
        """Fetch everything under ``prefix_url`` (ending in ``/*``) into ``local_dir``,
        keeping the key's path below the prefix. Compares nothing, so a first fetch into an
        empty directory is several times faster than ``sync`` on many small files; its
        ``--stat`` counts one success per command, not per file."""
        return transfer_counts(self._call(["cp", prefix_url, _dir(local_dir)],
                                            what=f"cp {prefix_url}"))

    def sync_up(self, local_dir: str, url: str) -> Transfer:
        """Upload what changed in ``local_dir`` to ``url`` (a prefix ending in ``/``).
        Symbolic links are not followed (they could point at root-only files); FIFOs,
        sockets and devices are skipped (s5cmd refuses them one by one)."""
        return transfer_counts(self._call(["sync", "--no-follow-symlinks", _dir(local_dir), url],
                                            what=f"sync up to {url}", skip=NOT_REGULAR))

    def cp_up(self, local_path: str, url: str) -> None:
        """Upload one file to exactly ``url`` (no wildcard expansion)."""
        self._call(["cp", "--raw", "--no-follow-symlinks", local_path, url],
                   what=f"upload to {url}")

    def presign(self, url: str, expire_s: int) -> str:
        """A read-only URL of ``url`` valid ``expire_s`` seconds (SigV4 query signing; it
        names the signing key's id, never the secret)."""
        out = self._call(["presign", "--expire", f"{int(expire_s)}s", url],
                         what=f"presign {url}", quiet=False)  # --stat would add a line
        urls = [line for line in out.splitlines() if line.startswith(("https://", "http://"))]
        if len(urls) != 1:
            raise ToolError(f"presign {url}: s5cmd printed no URL")
        return urls[0]

    def get(self, url: str, local_path: str) -> None:
        """Download exactly one object to ``local_path``."""
        self._call(["cp", "--raw", url, local_path], what=f"download {url}")

    # -- the one place s5cmd runs ----------------------------------------------------------

    def _call(self, args: list[str], *, what: str, quiet: bool = True, skip: str = "") -> str:
        """Run s5cmd with retries; errors containing ``skip`` do not count."""
        deadline = self.clock() + self.deadline_s
        delay = 1.0
        for attempt in range(1, self.attempts + 1):
            stdout, error = self._once(args, quiet=quiet, skip=skip)
            if error is None:
                return stdout
            transient = not any(marker in error for marker in PERMANENT_MARKERS)
            if not transient or attempt == self.attempts or self.clock() + delay >= deadline:
                raise ToolError(self._message(what, error, attempt))
            self.sleep(delay)
            delay = min(delay * 2, 30.0)
        raise AssertionError("unreachable")

    def _once(self, args: list[str], *, quiet: bool, skip: str) -> tuple[str, str | None]:
        """Run once; return stdout and the first error (None when it succeeded)."""
        try:
            result = run(self.argv(*args, quiet=quiet), timeout=self.timeout, env=self.env(),
                         check=False)
        except ToolError as exc:
            return "", str(exc)
        all_errors = error_messages(result.stderr)
        errors = [e for e in all_errors if not (skip and skip in e)]
        if errors:
            return result.stdout, errors[0]
        if result.returncode != 0 and len(errors) == len(all_errors):
            tail = " ".join(result.stderr.split())[-300:]
            return result.stdout, f"exit status {result.returncode}: {tail}"
        return result.stdout, None

    def _message(self, what: str, error: str, attempts: int) -> str:
        line = " ".join(error.split())
        line = re.sub(r",? ?request id: \S+,? host id:\S*", "", line)
        tries = f" (after {attempts} attempts)" if attempts > 1 else ""
        hint = f"; {MASTER_KEY_HINT}" if any(m in error for m in AUTH_MARKERS) else ""
        return scrub(f"s5cmd {what}: {line}{tries}{hint}", self.secrets)


def error_messages(stderr: str) -> list[str]:
    """The error texts s5cmd wrote on stderr (JSON lines, or plain ``ERROR`` lines)."""
    found = []
    for line in stderr.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            item = json.loads(line)
        except ValueError:
            item = None
        if isinstance(item, dict) and item.get("error"):
            found.append(str(item["error"]))
        elif item is None and ("ERROR" in line or "error" in line.lower()):
            found.append(line)
    return found


def transfer_counts(stdout: str) -> Transfer:
    """What one s5cmd command copied and failed to copy, from its ``--stat`` lines on stdout."""
    copied = failed = 0
    for line in stdout.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and item.get("operation") == "cp":
            copied += int(item.get("success", 0))
            failed += int(item.get("error", 0))
    return Transfer(copied, failed)


def _dir(path: str) -> str:
    return path if path.endswith("/") else path + "/"


def tool_for(ctx: Context, timeout: float = 3600.0, **options) -> S3Tool:
    """The S3Tool for a run's bucket, from its Context (spec.storage, secrets, base_env)."""
    storage = ctx.spec.storage
    options.setdefault("sleep", ctx.sleep)
    options.setdefault("clock", ctx.clock)
    return S3Tool(find_binary(ctx.base_env), storage.endpoint_url, ctx.secrets, ctx.base_env,
                  timeout, region=storage.region, **options)


def bucket_url(ctx: Context, key: str = "") -> str:
    """``s3://<bucket>/<key>``."""
    return f"s3://{ctx.spec.storage.bucket}/{key.lstrip('/')}"
