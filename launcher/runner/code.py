"""The code phase: put the training code in ``spec.paths.code_dir``, exactly as pinned.

- ``tarball``: ``s3://<bucket>/<tarball_key>`` is downloaded to a temporary file, its sha256
  compared with ``code.sha256`` (a mismatch fails the phase before anything is extracted),
  every member checked (no absolute paths, no ``..``, no links leaving the tree, no devices
  or FIFOs: one bad member refuses the whole archive), then extracted with tarfile's
  ``data`` filter where this Python has it. Members are paths relative to the checkout root.
- ``git``: ``git clone --no-checkout -- <url> <dir>``, ``git checkout --detach <commit>``,
  and ``git rev-parse HEAD`` must equal ``code.git_commit``, a full 40-hex sha (branch
  names, short shas and anything that could be read as an option are refused).

The code is assembled in a sibling staging directory and swapped in at the end, so a failed
fetch never leaves a half-written tree behind. It is owned by root and world-readable: the
trainer can run it but not change it. What ran (sha256 or commit) is noted in the status.

``spec.code_links`` are the exceptions: folders where the code writes its own outputs
(``reports/``) become links to folders on the volume, which the trainer owns and the upload
phase ships. What the code carried in such a folder is copied to the volume first, where
the volume does not have it yet (a tracked leaderboard stays the baseline).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from launcher.runner.context import Context
from launcher.runner.data import is_safe_relative, make_readable
from launcher.runner.s3 import bucket_url, tool_for
from launcher.runner.spec import scrub
from launcher.runner.status import PhaseFailed
from launcher.runner.tools import ToolError, run

PHASE = "code"
SHA256 = re.compile(r"^[0-9a-f]{64}$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
GIT_URL = re.compile(r"^(https://|http://|ssh://|git://|file://|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:)")
GIT_TIMEOUT = 1800.0


def fetch(ctx: Context) -> Path:
    """Fetch the pinned code into ``spec.paths.code_dir`` and return that directory."""
    code = ctx.spec.code
    final = Path(ctx.spec.paths.code_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        fetcher = fetch_tarball if code.kind == "tarball" else fetch_git
        what = fetcher(ctx, staging)
        make_readable(staging)
        link_outputs(ctx, staging)
        _swap_in(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    ctx.reporter.note(f"code: {what}")
    return final


def link_outputs(ctx: Context, code_dir: Path) -> None:
    """Replace each ``code_links`` folder of the code by a link to its volume folder."""
    for inside, on_volume in ctx.spec.code_links:
        inside, on_volume = inside.strip("/"), on_volume.strip("/")
        if not (is_safe_relative(inside) and is_safe_relative(on_volume)):
            raise PhaseFailed(PHASE, f"code link {inside!r} -> {on_volume!r}: not plain paths")
        target = ctx.mount / on_volume
        target.mkdir(parents=True, exist_ok=True)
        here = code_dir / inside
        if here.is_symlink() or (here.exists() and not here.is_dir()):
            raise PhaseFailed(PHASE, f"code link {inside}: the code has a file or link there")
        if here.is_dir():
            shutil.copytree(here, target, dirs_exist_ok=True,
                            copy_function=_copy_if_absent, symlinks=True)
            shutil.rmtree(here)
        here.parent.mkdir(parents=True, exist_ok=True)
        here.symlink_to(target, target_is_directory=True)


def _copy_if_absent(source: str, dest: str) -> None:
    if not os.path.lexists(dest):
        shutil.copy2(source, dest)


def _swap_in(staging: Path, final: Path) -> None:
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists() or final.is_symlink():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)


# -- tarball ---------------------------------------------------------------------------------

def fetch_tarball(ctx: Context, dest: Path) -> str:
    """Download, verify and extract the tarball into ``dest``; return what was fetched."""
    code = ctx.spec.code
    expected = code.sha256.lower()
    if not SHA256.match(expected):
        raise PhaseFailed(PHASE, "code.sha256 must be 64 hex digits")
    if not code.tarball_key:
        raise PhaseFailed(PHASE, "code.tarball_key is empty")
    url = bucket_url(ctx, code.tarball_key)
    with tempfile.TemporaryDirectory(prefix="code-", dir=dest.parent) as temp:
        archive = Path(temp) / "code.tar.gz"
        try:
            tool_for(ctx, timeout=900.0).get(url, str(archive))
        except ToolError as exc:
            raise PhaseFailed(PHASE, str(exc)) from None
        actual = sha256_of(archive)
        if actual != expected:
            raise PhaseFailed(PHASE, f"sha256 of {url} is {actual}, expected {expected}: "
                                     "refusing to extract")
        extract(archive, dest)
    return f"tarball {url} sha256={actual}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def extract(archive: Path, dest: Path) -> None:
    """Check every member, then extract; one unsafe member refuses the whole archive."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                problem = member_problem(member)
                if problem:
                    raise PhaseFailed(PHASE, f"tarball member {member.name!r}: {problem}")
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=members, filter="data")
            else:  # pragma: no cover - Pythons without PEP 706; the members were checked
                tar.extractall(dest, members=members)  # noqa: S202
    except (tarfile.TarError, OSError) as exc:
        raise PhaseFailed(PHASE, f"cannot extract the tarball: {exc}") from None


def member_problem(member: tarfile.TarInfo) -> str:
    """Why ``member`` may not be extracted, or ``""`` when it is safe."""
    name = member.name
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        return "not a regular file, directory or link"
    if _escapes(PurePosixPath(name), name):
        return "path leaves the extraction directory"
    if member.issym():
        target = PurePosixPath(name).parent / member.linkname
        if _escapes(target, member.linkname):
            return f"link to {member.linkname!r} leaves the extraction directory"
    if member.islnk() and _escapes(PurePosixPath(member.linkname), member.linkname):
        return f"hard link to {member.linkname!r} leaves the extraction directory"
    return ""


def _escapes(path: PurePosixPath, raw: str) -> bool:
    """True when ``path`` is absolute or climbs above its root at any point."""
    if raw.startswith("/") or "\0" in raw or path.is_absolute():
        return True
    depth = 0
    for part in path.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            return True
    return False


# -- git -------------------------------------------------------------------------------------

def fetch_git(ctx: Context, dest: Path) -> str:
    """Clone ``git_url`` into ``dest`` and check out exactly ``git_commit``."""
    code = ctx.spec.code
    url, commit = code.git_url, code.git_commit
    if not COMMIT.match(commit):
        raise PhaseFailed(PHASE, f"code.git_commit must be a full 40-hex sha, not {commit!r}")
    if url.startswith("-") or "::" in url or not GIT_URL.match(url):
        raise PhaseFailed(PHASE, f"code.git_url {scrub(url, ctx.secrets)!r} is not an "
                                 "https/ssh/git/file URL")
    env = _git_env(ctx)
    _git(ctx, env, ["clone", "--quiet", "--no-checkout", "--", url, str(dest)])
    _git(ctx, env, ["-C", str(dest), "checkout", "--quiet", "--detach", commit])
    head = _git(ctx, env, ["-C", str(dest), "rev-parse", "--verify", "HEAD"]).strip()
    if head != commit:
        raise PhaseFailed(PHASE, f"checked out {head}, expected {commit}")
    return f"git {scrub(url, ctx.secrets)} commit={commit}"


def _git_env(ctx: Context) -> dict[str, str]:
    env = {k: v for k, v in ctx.base_env.items() if not k.startswith("GIT_")}
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false",
                "GIT_CONFIG_NOSYSTEM": "1"})
    return env


def _git(ctx: Context, env: dict[str, str], args: list[str]) -> str:
    # ext:: runs arbitrary commands; never allow it, whatever the git version's default.
    argv = ["git", "-c", "protocol.ext.allow=never", "-c", "core.hooksPath=/dev/null", *args]
    try:
        return run(argv, timeout=GIT_TIMEOUT, env=env).stdout
    except ToolError as exc:
        raise PhaseFailed(PHASE, scrub(str(exc), ctx.secrets)) from None

