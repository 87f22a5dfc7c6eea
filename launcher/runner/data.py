"""The data phase: make ``<mount>/data`` hold exactly the run's data sources, and its links.

A source (:class:`~launcher.runner.spec.DataSource`) is the objects under a key prefix of a
bucket; they land under ``<mount>/data/<dest>`` keeping their path below the prefix. Without
``data_sources`` the spec's ``storage.data_prefix`` is the one source, landing in ``data/``.
A prefix names a folder: ``datasets/v1`` and ``datasets/v1/`` both mean the objects under
``datasets/v1/`` (never ``datasets/v10/...``); an empty prefix (the whole bucket, run outputs
included) and s5cmd wildcard characters are refused. ``include`` narrows a source to the
paths matching one of its shell patterns; destinations may not nest. Links
(:class:`~launcher.runner.spec.DataLink`) are made last, relative, to files of the data set:
the names a training repository's loader expects for files its bucket keeps under others.

On a reused volume only what changed is fetched. After each successful sync the volume keeps
``<mount>/.launcher-data.json``: every file's size and ETag as the listings gave them. Before
the next sync, a local file whose object now lists another size or ETag — or that the record
does not vouch for — is deleted, so it is fetched again. s5cmd ``sync`` alone compares size
and modification time, which misses a same-size rewrite whose time does not show it (the
same second as the download, clock skew; measured in ``docs/sync-tool.md``); the ETag does
not. Without a record (a volume from before it) ``sync``'s own rule is all there is, and a
source with ``include`` re-fetches a file of another size. Local files that are in no
listing (an older dataset version, a half-written file, a stray link) are deleted by this
module, after successful, non-empty listings and before the download (which frees their
space first) — not by ``sync --delete``, which empties the destination when its source
matches nothing. Into an empty directory a source's first fetch is ``cp``, not ``sync``: on
many small files it is several times faster. A source with ``include`` fetches exactly the
files it misses, one by one.

Afterwards the local tree must hold exactly the listed keys with the listed sizes; if not,
the phase lists, prunes and syncs once more, then fails. Files end up world-readable (the
trainer reads them; root owns them, so the trainer cannot change them).
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from launcher.runner.context import Context
from launcher.runner.s3 import S3Tool, tool_for
from launcher.runner.spec import DataLink, DataSource
from launcher.runner.status import PhaseFailed
from launcher.runner.tools import ToolError

PHASE = "data"
STATE_FILE = ".launcher-data.json"
WILDCARDS = set("*?[]{}")
ATTEMPTS = 2
SHOW = 5


@dataclass(frozen=True)
class Manifest:
    """The dataset as synced: object count, total bytes, the ``s3://`` prefixes it came from
    (comma-separated), and what this sync fetched and deleted locally."""

    files: int
    bytes: int
    source: str
    fetched: int = 0
    removed: int = 0


def data_dir(ctx: Context) -> Path:
    return ctx.mount / "data"


def normalise_prefix(prefix: str) -> str:
    """``"datasets/v1"`` -> ``"datasets/v1/"``; refuses empty prefixes and wildcards."""
    cleaned = prefix.strip().strip("/")
    if not cleaned:
        raise PhaseFailed(PHASE, "a data prefix is empty: refusing to sync the whole "
                                 "bucket (it holds the run outputs too)")
    if WILDCARDS & set(cleaned):
        raise PhaseFailed(PHASE, f"data prefix {prefix!r} contains a wildcard character")
    if not is_safe_relative(cleaned):
        raise PhaseFailed(PHASE, f"data prefix {prefix!r} is not a plain path")
    return cleaned + "/"


def is_safe_relative(path: str) -> bool:
    """True for ``a/b/c``; False for absolute paths, ``.``/``..``/empty parts, NUL."""
    parts = path.split("/")
    return "\0" not in path and all(p not in ("", ".", "..") for p in parts)


@dataclass(frozen=True)
class Part:
    """One source as listed: where it lands (``dest``, relative to ``data/``), its
    ``s3://`` prefix, and ``{path below the prefix: (size, etag)}`` of what it holds."""

    dest: str
    url: str
    files: dict[str, tuple[int, str]]
    include: tuple[str, ...] = ()

    def local(self, rel: str) -> str:
        """``rel`` as a path relative to ``data/``."""
        return f"{self.dest}/{rel}" if self.dest else rel


def sync(ctx: Context) -> Manifest:
    """Sync every data source into ``<mount>/data``, make the links and check the tree;
    raise PhaseFailed if a bucket refuses, a prefix is empty, or the local tree does not
    match the listings."""
    sources = checked_sources(ctx)
    target = data_dir(ctx)
    target.mkdir(parents=True, exist_ok=True)
    tool = tool_for(ctx, timeout=max(600.0, ctx.seconds_left()), attempts=3)
    problems: list[str] = []
    for attempt in range(1, ATTEMPTS + 1):
        parts = [_list_part(ctx, tool, source) for source in sources]
        remote = combined(parts)
        expected = {rel: size for rel, (size, _) in remote.items()}
        unlink_links(target, ctx.spec.data_links)  # made again below: not stale files
        removed = prune(target, expected) + drop_changed(target, remote, read_state(ctx.mount))
        fetched = sum(fetch(tool, part, target) for part in parts)
        problems = compare(target, expected)
        if not problems:
            write_state(ctx.mount, ", ".join(p.url for p in parts), remote)
            make_links(target, ctx.spec.data_links, expected)
            described = ", ".join(p.url for p in parts)
            manifest = Manifest(len(expected), sum(expected.values()), described, fetched,
                                removed)
            ctx.log(f"data: {manifest.files} files, {manifest.bytes} bytes from {described} "
                    f"(fetched {fetched}, removed {removed} stale)")
            return manifest
        ctx.log(f"data: attempt {attempt}: local tree differs from the bucket: "
                + "; ".join(problems[:SHOW]))
    raise PhaseFailed(PHASE, f"{len(problems)} difference(s) between {target} and the "
                             "bucket: " + "; ".join(problems[:SHOW]))


def checked_sources(ctx: Context) -> list[DataSource]:
    """The spec's sources with their prefixes normalised; refuses unsafe or nested dests."""
    sources = [replace(s, prefix=normalise_prefix(s.prefix), dest=s.dest.strip("/"))
               for s in ctx.spec.sources]
    dests = [s.dest for s in sources]
    for dest in dests:
        if dest and not is_safe_relative(dest):
            raise PhaseFailed(PHASE, f"data source dest {dest!r} is not a plain path")
    for i, one in enumerate(dests):
        for other in dests[i + 1:]:
            if _nested(one, other):
                raise PhaseFailed(PHASE, f"data source dests {one!r} and {other!r} overlap: "
                                         "each source needs a folder of its own")
    return sources


def _nested(a: str, b: str) -> bool:
    return not a or not b or a == b or a.startswith(b + "/") or b.startswith(a + "/")


def _list_part(ctx: Context, tool: S3Tool, source: DataSource) -> Part:
    bucket = source.bucket or ctx.spec.storage.bucket
    url = f"s3://{bucket}/{source.prefix}"
    files = listing(tool, url, source.prefix)
    if source.include:
        files = {rel: v for rel, v in files.items()
                 if any(fnmatch.fnmatchcase(rel, pat) for pat in source.include)}
        if not files:
            raise PhaseFailed(PHASE, f"no objects under {url} match {list(source.include)}")
    return Part(source.dest, url, files, source.include)


def combined(parts: list[Part]) -> dict[str, tuple[int, str]]:
    """Every part's files, keyed by their path relative to ``data/``."""
    return {part.local(rel): value for part in parts for rel, value in part.files.items()}


def fetch(tool: S3Tool, part: Part, target: Path) -> int:
    """Download what ``part`` misses or has changed; the number of files fetched."""
    root = target / part.dest if part.dest else target
    present, _ = local_files(root) if root.is_dir() else ({}, [])
    try:
        if part.include:  # exactly the files it misses (another size: fetched again)
            wanted = [rel for rel, (size, _) in part.files.items() if present.get(rel) != size]
            for rel in wanted:
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                tool.get(part.url + rel, str(root / rel))
            return len(wanted)
        root.mkdir(parents=True, exist_ok=True)
        if not present:  # nothing to compare against: copy, don't sync
            tool.cp_down(part.url + "*", str(root))
            return len(part.files)
        return tool.sync_down(part.url + "*", str(root)).copied
    except ToolError as exc:
        raise PhaseFailed(PHASE, str(exc)) from None


def unlink_links(target: Path, links: tuple[DataLink, ...]) -> None:
    for link in links:
        path = target / link.path.strip("/")
        if is_safe_relative(link.path.strip("/")) and path.is_symlink():
            path.unlink()


def make_links(target: Path, links: tuple[DataLink, ...], expected: dict[str, int]) -> None:
    """Create each link (relative, so the tree can move) to a file of the data set."""
    for link in links:
        path, goal = link.path.strip("/"), link.target.strip("/")
        if not (is_safe_relative(path) and is_safe_relative(goal)):
            raise PhaseFailed(PHASE, f"data link {link.path!r} -> {link.target!r}: not plain "
                                     "paths under the data folder")
        if goal not in expected:
            raise PhaseFailed(PHASE, f"data link {path} -> {goal}: {goal} is not a file of "
                                     "the data set")
        if path in expected or any(p in expected for p in _parents(path)):
            raise PhaseFailed(PHASE, f"data link {path}: a file of the data set is there")
        where = target / path
        if any((target / p).is_symlink() for p in _parents(path)):
            raise PhaseFailed(PHASE, f"data link {path}: its folder is a link")
        where.parent.mkdir(parents=True, exist_ok=True)
        if where.is_symlink() or where.exists():
            where.unlink()
        where.symlink_to(os.path.relpath(target / goal, where.parent))


def read_state(mount: Path) -> dict[str, tuple[int, str]] | None:
    """The last successful sync's ``{relative path: (size, etag)}``; None when there is no
    readable record."""
    try:
        files = json.loads((mount / STATE_FILE).read_text())["files"]
        return {rel: (int(size), str(etag)) for rel, (size, etag) in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_state(mount: Path, source: str, remote: dict[str, tuple[int, str]]) -> None:
    """Record what ``data/`` now holds (atomically: a reader sees the old or the new)."""
    path = mount / STATE_FILE
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps({"source": source, "files": remote}, sort_keys=True))
    os.replace(partial, path)


def drop_changed(root: Path, remote: dict[str, tuple[int, str]],
                 saved: dict[str, tuple[int, str]] | None) -> int:
    """Delete local files whose object changed since the recorded sync (another size or
    ETag), or that the record does not list; nothing without a record. The count deleted."""
    if saved is None:
        return 0
    present, _ = local_files(root)
    changed = [rel for rel in present if saved.get(rel) != remote.get(rel)]
    for rel in changed:
        (root / rel).unlink()
    return len(changed)


def listing(tool: S3Tool, source: str, prefix: str) -> dict[str, tuple[int, str]]:
    """``{relative path: (size, etag)}`` of every object under ``source`` (an ``s3://`` URL
    of ``prefix``); refuses an empty prefix, keys that are not plain relative paths, and
    keys a filesystem cannot hold."""
    try:
        objects = tool.ls(source + "*")
    except ToolError as exc:
        raise PhaseFailed(PHASE, str(exc)) from None
    expected: dict[str, tuple[int, str]] = {}
    for obj in objects:
        if not obj.key.startswith(prefix) or obj.key.endswith("/"):
            continue  # folder markers carry no data
        rel = obj.key[len(prefix):]
        if not is_safe_relative(rel):
            raise PhaseFailed(PHASE, f"object key {obj.key!r} is not a safe relative path")
        expected[rel] = (obj.size, obj.etag)
    if not expected:
        raise PhaseFailed(PHASE, f"no objects under {source}: check storage.data_prefix")
    clashes = sorted(p for rel in expected for p in _parents(rel) if p in expected)
    if clashes:
        raise PhaseFailed(PHASE, f"key {prefix}{clashes[0]} is both an object and a folder")
    return expected


def _parents(rel: str) -> list[str]:
    parts = rel.split("/")[:-1]
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def prune(root: Path, expected: dict[str, int]) -> int:
    """Delete everything under ``root`` that is not an expected regular file: stale files,
    links, devices, directories where a file belongs, and directories left empty.
    Returns the number of files removed."""
    removed = 0
    for here, dirs, files in os.walk(root, topdown=False):
        base = Path(here)
        for name in files + dirs:
            path = base / name
            rel = path.relative_to(root).as_posix()
            odd = path.is_symlink() or not (path.is_file() or path.is_dir())
            if odd or (path.is_file() and rel not in expected):
                path.unlink()
                removed += 1
            elif path.is_dir() and (rel in expected or not any(path.iterdir())):
                removed += _remove_tree(path)
    return removed


def _remove_tree(path: Path) -> int:
    count = sum(len(files) for _, _, files in os.walk(path))
    shutil.rmtree(path)
    return count


def local_files(root: Path) -> tuple[dict[str, int], list[str]]:
    """``{relative path: size}`` of the regular files under ``root`` (links not followed),
    and the relative paths of anything else that is not a directory."""
    found: dict[str, int] = {}
    others: list[str] = []
    for here, dirs, files in os.walk(root):
        base = Path(here)
        for name in files + [d for d in dirs if (base / d).is_symlink()]:
            path = base / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink() or not path.is_file():
                others.append(rel)
            else:
                found[rel] = path.stat().st_size
    return found, others


def compare(root: Path, expected: dict[str, int]) -> list[str]:
    """What differs between ``root`` and ``expected`` (empty when identical); makes every
    file and directory readable by the trainer on the way."""
    found, others = local_files(root)
    problems = [f"missing {rel}" for rel in sorted(set(expected) - set(found))]
    problems += [f"unexpected {rel}" for rel in sorted(set(found) - set(expected))]
    problems += [f"size of {rel}: {found[rel]} != {expected[rel]}"
                 for rel in sorted(set(found) & set(expected)) if found[rel] != expected[rel]]
    problems += [f"not a regular file: {rel}" for rel in sorted(others)]
    if not problems:
        make_readable(root)
    return problems


def make_readable(root: Path) -> None:
    """Add world read (and traverse for directories) where missing; links are left alone."""
    for here, dirs, files in os.walk(root):
        base = Path(here)
        _add_mode(base, 0o555)
        for name in files:
            _add_mode(base / name, 0o444)
        for name in dirs:
            _add_mode(base / name, 0o555)


def _add_mode(path: Path, bits: int) -> None:
    if path.is_symlink():
        return
    mode = path.stat().st_mode
    if mode & bits != bits:
        path.chmod((mode | bits) & 0o7777)
