"""The code bundle: the launching checkout as ``git archive`` packs it, with its sha256.

Only committed files travel (``git archive --format=tar.gz HEAD`` of the code directory, so
a subdirectory of a repository packs that subdirectory). Uncommitted changes are left out:
the launch warns and records ``dirty`` rather than refusing. The bundle goes to
``<runs_prefix>/<run_id>/code.tar.gz``, where the runner fetches it and checks the sha256.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Sequence
from pathlib import Path

from launcher.bucket import BucketAddress
from launcher.errors import ConfigError
from launcher.provision.model import CodeBundle

GIT_TIMEOUT_S = 120.0
BUNDLE_NAME = "code.tar.gz"


def _git(code_dir: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(code_dir), *args], capture_output=True,
                              text=True, timeout=GIT_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise ConfigError("git is not installed: the code bundle is made with git archive")\
            from None
    except subprocess.TimeoutExpired:
        raise ConfigError(f"git {args[0]} in {code_dir} took over {GIT_TIMEOUT_S:g}s") from None
    if done.returncode != 0:
        line = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise ConfigError(f"code directory {code_dir}: git {args[0]} failed: {line}",
                          hint="code.kind tarball packs a git checkout with at least one "
                          "commit; pass --code-dir, or set code.kind git")
    return done.stdout.strip()


def require_at_head(code_dir: Path, paths: Sequence[str], what: str) -> None:
    """Refuse a launch whose code bundle would lack one of ``paths`` (relative to
    ``code_dir``) at HEAD: the instance would only find out after booting."""
    _git(code_dir, "rev-parse", "--verify", "HEAD^{commit}")
    missing = []
    for path in paths:
        done = subprocess.run(["git", "-C", str(code_dir), "cat-file", "-e", f"HEAD:./{path}"],
                              capture_output=True, timeout=GIT_TIMEOUT_S, check=False)
        if done.returncode != 0:
            missing.append(path)
    if missing:
        raise ConfigError(f"code directory {code_dir}: {', '.join(missing)} not committed at "
                          f"HEAD ({what}; the launch packs git archive HEAD)",
                          hint="commit it, pass the training checkout as --code-dir, or fix "
                          "the path in the ups section")


def bundle_code(code_dir: Path, dest: Path, address: BucketAddress, run_id: str) -> CodeBundle:
    """Pack ``code_dir`` at HEAD into ``dest`` (a directory) and describe the bundle."""
    if not code_dir.is_dir():
        raise ConfigError(f"code directory {code_dir} does not exist")
    git_sha = _git(code_dir, "rev-parse", "--verify", "HEAD^{commit}")
    dirty = bool(_git(code_dir, "status", "--porcelain", "--", "."))
    path = dest / BUNDLE_NAME
    _git(code_dir, "archive", "--format=tar.gz", "-o", str(path.resolve()), "HEAD")
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    url = address.run_url(run_id, BUNDLE_NAME)
    key = url.removeprefix(f"s3://{address.bucket}/")
    return CodeBundle(path=path, key=key, url=url, sha256=digest.hexdigest(),
                      size=path.stat().st_size, git_sha=git_sha, dirty=dirty)
