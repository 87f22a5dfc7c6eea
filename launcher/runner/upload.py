"""The upload phase: the run's outputs, logs, status and manifest to the bucket, verified.

Layout under ``s3://<bucket>/<run_prefix>/``::

    checkpoints/...  reports/...   one folder per ``spec.upload_dirs`` entry (``<mount>/<d>``)
    logs/...         ``spec.paths.log_dir`` (runner.log, train.log, ...)
    manifest.json    who/what/where: run, stage, placement, command, code, dataset, phases,
                     exit code, start and end times
    status.json      the status file as it was when the upload began (uploaded last)

Logs and the status file keep changing while they are uploaded (this phase logs too), so a
snapshot of them is staged in a temporary folder under ``state_dir`` and that is what is
uploaded and verified. Output folders are uploaded in place (training has ended). Symbolic
links are never followed (a link could point at a root-only file); FIFOs, sockets and
devices hold no data and are skipped.

Verification lists the destination and compares every local file's key and size. ``upload``
never raises: any failure is a ``problem`` and ``verified`` is False, so teardown keeps the
volume. ``upload_heartbeat`` (every ``spec.heartbeat_s`` during training) uploads
``status.json`` and whatever logs exist (a long log's tail only); its failures are logged,
never raised.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from launcher.runner.context import Context
from launcher.runner.data import Manifest, is_safe_relative
from launcher.runner.s3 import S3Tool, bucket_url, tool_for
from launcher.runner.secretsfile import MIN_SCRUB_LEN, REDACTED, scrub_values
from launcher.runner.spec import RunSecrets, scrub
from launcher.runner.status import utc_now
from launcher.runner.tools import ToolError

UPLOAD_TIMEOUT = 4 * 3600.0
HEARTBEAT_TIMEOUT = 120.0
HEARTBEAT_LOGS = ("runner.log", "train.log")
HEARTBEAT_LOG_BYTES = 16 << 20
SHOW = 10
RELIST_DELAYS_S = (1.0, 3.0)
COPY_CHUNK = 1 << 20  # bytes of whole lines scrubbed at a time


@dataclass(frozen=True)
class RunOutcome:
    """How training ended: its exit status (None if it never ran), a one-line reason, the
    dataset manifest (None if the data phase did not finish), optionally when the run started
    (defaults to the first phase's start) and the run's final state as the supervisor sees it
    ("succeeded"/"failed"; defaults to the status file's, which still says "running")."""

    exit_code: int | None
    reason: str = ""
    dataset: Manifest | None = None
    started: str = ""
    state: str = ""


@dataclass(frozen=True)
class UploadResult:
    """``verified`` only when every local file is in the bucket with its size."""

    verified: bool
    objects: int
    bytes: int
    problems: tuple[str, ...] = ()


def run_url(ctx: Context, rel: str = "") -> str:
    return bucket_url(ctx, f"{ctx.spec.run_prefix}/{rel}")


def upload(ctx: Context, outcome: RunOutcome) -> UploadResult:
    """Upload and verify everything the run leaves behind; never raises."""
    problems: list[str] = []
    expected: dict[str, int] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="upload-", dir=ctx.spec.paths.state_dir) as tmp:
            tool = tool_for(ctx, timeout=UPLOAD_TIMEOUT, attempts=3)
            plan = _plan(ctx, outcome, Path(tmp), problems)
            for local, rel in plan:
                _send(tool, local, run_url(ctx, rel), problems)
            expected = _expected(plan, ctx.spec.run_prefix)
            problems += verify(tool, run_url(ctx, "*"), expected)
    except Exception as exc:  # a bug here must not cost the volume: report, keep it
        problems.append(f"upload failed: {type(exc).__name__}: {exc}")
    problems = [scrub(p, ctx.secrets) for p in problems]
    result = UploadResult(not problems, len(expected), sum(expected.values()), tuple(problems))
    ctx.log(f"upload: {result.objects} objects, {result.bytes} bytes to {run_url(ctx)}: "
            + ("verified" if result.verified else "NOT verified: " + "; ".join(problems[:SHOW])))
    return result


def _plan(ctx: Context, outcome: RunOutcome, staging: Path,
          problems: list[str]) -> list[tuple[Path, str]]:
    """``(local path, destination relative to the run prefix)``: folders end in ``/``; the
    status file comes last. Logs, manifest and status are snapshots in ``staging``."""
    plan: list[tuple[Path, str]] = []
    for name in ctx.spec.upload_dirs:
        clean = name.strip("/")
        if not is_safe_relative(clean) or clean in ("logs", "status.json", "manifest.json"):
            problems.append(f"upload_dirs entry {name!r} is not a plain folder name")
        elif (ctx.mount / clean).is_dir():
            plan.append((ctx.mount / clean, clean + "/"))
        else:
            ctx.log(f"upload: {ctx.mount / clean} does not exist; nothing to upload from it")
    logs = staging / "logs"
    _copy_tree(Path(ctx.spec.paths.log_dir), logs, ctx.secrets)
    plan.append((logs, "logs/"))
    manifest = staging / "manifest.json"
    manifest.write_text(scrub(json.dumps(run_manifest(ctx, outcome), indent=2), ctx.secrets))
    plan.append((manifest, "manifest.json"))
    status = Path(ctx.spec.paths.state_dir) / "status.json"
    if status.is_file():
        shutil.copyfile(status, staging / "status.json")
        plan.append((staging / "status.json", "status.json"))
    return plan


def _send(tool: S3Tool, local: Path, url: str, problems: list[str]) -> None:
    try:
        if url.endswith("/"):
            tool.sync_up(str(local), url)
        else:
            tool.cp_up(str(local), url)
    except ToolError as exc:
        problems.append(str(exc))


def run_manifest(ctx: Context, outcome: RunOutcome) -> dict:
    """What ``manifest.json`` holds."""
    spec = ctx.spec
    snapshot = ctx.reporter.snapshot()
    phases = snapshot.get("phases", [])
    started = outcome.started or (phases[0]["started"] if phases else "")
    return {
        "run_id": spec.run_id,
        "stage": spec.stage,
        "placement": asdict(spec.placement),
        "command": list(spec.command),
        "workdir": spec.workdir,
        "code": asdict(spec.code),
        "storage": {"endpoint_url": spec.storage.endpoint_url, "bucket": spec.storage.bucket,
                    "data_prefix": spec.storage.data_prefix, "run_prefix": spec.run_prefix},
        "dataset": asdict(outcome.dataset) if outcome.dataset else None,
        "exit_code": outcome.exit_code,
        "reason": outcome.reason,
        "state": outcome.state or snapshot.get("state", ""),
        "phases": phases,
        "notes": snapshot.get("notes", []),
        "started": started,
        "ended": utc_now(),
        "deadline_epoch": spec.deadline_epoch,
    }


def verify(tool: S3Tool, listing_url: str, expected: dict[str, int],
           sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """Problems with ``expected`` (``{key: size}``) as found by listing ``listing_url``.
    A key missing from the listing is looked for again after :data:`RELIST_DELAYS_S` (an
    S3-compatible store may list a just-overwritten object a moment late) before it counts."""
    for delay in RELIST_DELAYS_S:
        problems = _compare(tool, listing_url, expected)
        if not any(p.startswith("missing ") for p in problems):
            return problems
        sleep(delay)
    return _compare(tool, listing_url, expected)


def _compare(tool: S3Tool, listing_url: str, expected: dict[str, int]) -> list[str]:
    try:
        remote = {obj.key: obj.size for obj in tool.ls(listing_url)}
    except ToolError as exc:
        return [f"cannot verify: {exc}"]
    problems = [f"missing {key}" for key in sorted(expected) if key not in remote]
    problems += [f"size of {key}: bucket has {remote[key]}, local {size}"
                 for key, size in sorted(expected.items())
                 if key in remote and remote[key] != size]
    return problems


def _expected(plan: list[tuple[Path, str]], run_prefix: str) -> dict[str, int]:
    expected: dict[str, int] = {}
    for local, rel in plan:
        if rel.endswith("/"):
            for sub, size in regular_files(local).items():
                expected[f"{run_prefix}/{rel}{sub}"] = size
        elif local.is_file():
            expected[f"{run_prefix}/{rel}"] = local.stat().st_size
    return expected


def regular_files(root: Path) -> dict[str, int]:
    """``{relative path: size}`` of the regular files under ``root``, links not followed."""
    found: dict[str, int] = {}
    for here, _dirs, files in os.walk(root):
        for name in files:
            path = Path(here) / name
            if not path.is_symlink() and path.is_file():
                found[path.relative_to(root).as_posix()] = path.stat().st_size
    return found


def _copy_tree(source: Path, dest: Path, secrets: RunSecrets) -> None:
    """Snapshot the regular files under ``source`` into ``dest``, secrets scrubbed (links
    are not copied). train.log is the trainer's output, and the trainer holds the W&B key."""
    dest.mkdir(parents=True, exist_ok=True)
    if not source.is_dir():
        return
    for rel in regular_files(source):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        copy_tail(source / rel, target, None, secrets)


def upload_heartbeat(ctx: Context) -> bool:
    """Upload ``status.json`` and whatever of ``runner.log``/``train.log`` exists in the log
    dir (of a log, at most its last ``HEARTBEAT_LOG_BYTES``: the upload phase sends it
    whole); True unless something failed to go up. Failures are logged, never raised."""
    logs = Path(ctx.spec.paths.log_dir)
    files = [(logs / name, f"logs/{name}") for name in HEARTBEAT_LOGS]
    return _send_status(ctx, files, HEARTBEAT_LOG_BYTES, "heartbeat")


def upload_final_status(ctx: Context) -> bool:
    """Teardown's last word: ``status.json`` and the whole ``runner.log``. ``train.log`` is
    left as the upload phase sent it: a heartbeat-sized tail must never replace it."""
    runner_log = Path(ctx.spec.paths.log_dir) / "runner.log"
    return _send_status(ctx, [(runner_log, "logs/runner.log")], None, "final status")


def _send_status(ctx: Context, logs: list[tuple[Path, str]], limit: int | None,
                 what: str) -> bool:
    state = Path(ctx.spec.paths.state_dir)
    files = [(state / "status.json", "status.json"), *logs]
    try:
        tool = tool_for(ctx, timeout=HEARTBEAT_TIMEOUT, attempts=1)
        with tempfile.TemporaryDirectory(prefix="heartbeat-", dir=state) as tmp:
            for source, rel in files:
                if source.is_file() and not source.is_symlink():
                    snapshot = Path(tmp) / source.name
                    copy_tail(source, snapshot, limit, ctx.secrets)
                    tool.cp_up(str(snapshot), run_url(ctx, rel))
        return True
    except Exception as exc:  # neither may stop training or a teardown
        ctx.log(f"{what} upload failed: {scrub(str(exc), ctx.secrets)}")
        return False


def copy_tail(source: Path, dest: Path, limit: int | None,
              secrets: RunSecrets | None = None) -> None:
    """Copy the last ``limit`` bytes of ``source`` (all of it when smaller or None) to
    ``dest``, line by line, with every secret value of ``secrets`` replaced by ``***``. Where
    the tail cuts into a secret, the end piece of it that is left is masked too."""
    values = secrets.all_values() if secrets else []
    with open(source, "rb") as reader, open(dest, "wb") as writer:
        size = os.fstat(reader.fileno()).st_size
        if limit is not None and size > limit:
            reader.seek(size - limit)
            writer.write(scrub_values(_mask_cut_secret(reader.readline(), values), values))
        # Whole lines, about a MiB at a time: no value holds a newline, so none is split.
        while lines := reader.readlines(COPY_CHUNK):
            writer.write(scrub_values(b"".join(lines), values))


def _mask_cut_secret(line: bytes, values: list[str]) -> bytes:
    """``line`` begins where a tail was cut: an end piece of a secret it starts with
    (:data:`MIN_SCRUB_LEN` bytes or more; a whole value is left to the scrubber) as ``***``."""
    for raw in sorted((v.encode() for v in values), key=len, reverse=True):
        for size in range(len(raw) - 1, MIN_SCRUB_LEN - 1, -1):
            if line.startswith(raw[-size:]):
                return REDACTED.encode() + line[size:]
    return line
