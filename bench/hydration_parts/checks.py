"""Checking a local tree against the data set (every file's sha256, hashed again only when
its inode, size, mtime or ctime moved), and recording one sync for the JSON."""

from __future__ import annotations

import contextlib
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .datasets import Change, DataSet
from .measure import Result
from .shared import WRITE_CHUNK

StatKey = tuple[int, int, int, int]  # inode, size, mtime_ns, ctime_ns: ctime moves on any write


def stat_key(st: os.stat_result) -> StatKey:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def walk(dest: Path) -> dict[str, os.stat_result]:
    """``{rel: lstat}`` of every file under ``dest``."""
    found = {}
    for top, _, files in os.walk(dest):
        for name in files:
            path = Path(top, name)
            found[path.relative_to(dest).as_posix()] = path.lstat()
    return found


def evict(dest: Path) -> None:
    """Write ``dest`` to disk and drop it from the page cache, so that the trees kept for
    the incremental pass do not squeeze memory (and charge reclaim to the next tools)."""
    os.sync()
    for rel in walk(dest):
        with contextlib.suppress(OSError):
            fd = os.open(dest / rel, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as src:
        while chunk := src.read(WRITE_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Check:
    missing: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    touched: int = 0  # files written (or re-stamped) by the sync: inode or ctime changed

    @property
    def ok(self) -> bool:
        return not (self.missing or self.wrong or self.extra)


def verify(ds: DataSet, dest: Path, cache: dict[str, tuple[StatKey, str]],
           before: dict[str, StatKey], pool: ThreadPoolExecutor) -> Check:
    """Every expected file present with the expected sha256, nothing else. A file whose
    (inode, size, mtime, ctime) is what it was when last hashed is not hashed again."""
    check, found = Check(), walk(dest)
    check.extra = sorted(set(found) - set(ds.expected))
    todo: list[tuple[str, StatKey]] = []
    for rel in ds.expected:
        st = found.get(rel)
        if st is None:
            check.missing.append(rel)
            continue
        key = stat_key(st)
        if before.get(rel) != key:
            check.touched += 1
        cached = cache.get(rel)
        if not (cached and cached[0] == key):
            todo.append((rel, key))
    digests = pool.map(lambda item: file_sha256(dest / item[0]), todo)
    for (rel, key), digest in zip(todo, digests, strict=True):
        cache[rel] = (key, digest)
    check.wrong = [rel for rel, sha in ds.expected.items()
                   if rel in found and cache[rel][1] != sha]
    return check


@dataclass
class Pass:
    """One sync as recorded in the JSON."""

    wall: float
    cpu: float
    rss_mib: float
    server_cpu: float
    fetched: int | None
    touched: int
    expected_fetch: int
    missing: int
    wrong: int
    extra: int
    missed: dict[str, int]
    error: str
    steps: list[float]

    @property
    def correct(self) -> bool:
        return not (self.error or self.missing or self.wrong or self.extra)


def record(result: Result, check: Check | None, expected: int,
           changes: list[Change] | None = None) -> Pass:
    """The :class:`Pass` of one sync; ``missed`` counts the changes left stale, by kind."""
    missed: dict[str, int] = {}
    if check and changes:
        stale = set(check.wrong) | set(check.missing)
        for change in changes:
            if change.rel in stale:
                missed[change.kind] = missed.get(change.kind, 0) + 1
    return Pass(round(result.wall, 4), round(result.cpu, 4), round(result.rss_kib / 1024, 1),
                round(result.server_cpu, 4), result.fetched, check.touched if check else 0,
                expected, len(check.missing) if check else 0, len(check.wrong) if check else 0,
                len(check.extra) if check else 0, missed, result.error, result.steps)
