"""The data phase: make ``<mount>/data`` identical to ``s3://<bucket>/<data_prefix>/``.

``data_prefix`` names a folder: ``datasets/v1`` and ``datasets/v1/`` both mean the objects
under ``datasets/v1/`` (never ``datasets/v10/...``); the object ``datasets/v1/a/b.bin``
lands at ``<mount>/data/a/b.bin``. An empty prefix (the whole bucket, run outputs included)
and s5cmd wildcard characters are refused.

On a reused volume only what changed is fetched. After each successful sync the volume keeps
``<mount>/.launcher-data.json``: every file's size and ETag as the listing gave them. Before
the next sync, a local file whose object now lists another size or ETag — or that the record
does not vouch for — is deleted, so ``sync`` fetches it again. s5cmd ``sync`` alone compares
size and modification time, which misses a same-size rewrite whose time does not show it
(the same second as the download, clock skew; measured in ``docs/sync-tool.md``); the ETag
does not. Without a record (a volume from before it) ``sync``'s own rule is all there is.
Local files that are not in the bucket listing (an older dataset version, a half-written
file, a stray link) are deleted by this module, after a successful, non-empty listing and
before the download (which frees their space first) — not by ``sync --delete``, which
empties the destination when its source matches nothing. Into an empty directory the first
fetch is ``cp``, not ``sync``: on many small files it is several times faster.

Afterwards the local tree must hold exactly the listed keys with the listed sizes; if not,
the phase lists, prunes and syncs once more, then fails. Files end up world-readable (the
trainer reads them; root owns them, so the trainer cannot change them).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from launcher.runner.context import Context
from launcher.runner.s3 import S3Tool, bucket_url, tool_for
from launcher.runner.status import PhaseFailed
from launcher.runner.tools import ToolError

PHASE = "data"
STATE_FILE = ".launcher-data.json"
WILDCARDS = set("*?[]{}")
ATTEMPTS = 2
SHOW = 5


@dataclass(frozen=True)
class Manifest:
    """The dataset as synced: object count, total bytes, the ``s3://`` prefix it came from,
    and what this sync fetched and deleted locally."""

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
        raise PhaseFailed(PHASE, "storage.data_prefix is empty: refusing to sync the whole "
                                 "bucket (it holds the run outputs too)")
    if WILDCARDS & set(cleaned):
        raise PhaseFailed(PHASE, f"storage.data_prefix {prefix!r} contains a wildcard character")
    if not is_safe_relative(cleaned):
        raise PhaseFailed(PHASE, f"storage.data_prefix {prefix!r} is not a plain path")
    return cleaned + "/"


def is_safe_relative(path: str) -> bool:
    """True for ``a/b/c``; False for absolute paths, ``.``/``..``/empty parts, NUL."""
    parts = path.split("/")
    return "\0" not in path and all(p not in ("", ".", "..") for p in parts)


def sync(ctx: Context) -> Manifest:
    """Sync the dataset into ``<mount>/data`` and check it; raise PhaseFailed if the bucket
    refuses, the prefix is empty, or the local tree does not match the listing."""
    prefix = normalise_prefix(ctx.spec.storage.data_prefix)
    source = bucket_url(ctx, prefix)
    target = data_dir(ctx)
    target.mkdir(parents=True, exist_ok=True)
    tool = tool_for(ctx, timeout=max(600.0, ctx.seconds_left()), attempts=3)
    problems: list[str] = []
    for attempt in range(1, ATTEMPTS + 1):
        remote = listing(tool, source, prefix)
        expected = {rel: size for rel, (size, _) in remote.items()}
        removed = prune(target, expected) + drop_changed(target, remote, read_state(ctx.mount))
        fetched = fetch(tool, source, target, expected)
        problems = compare(target, expected)
        if not problems:
            write_state(ctx.mount, source, remote)
            manifest = Manifest(len(expected), sum(expected.values()), source, fetched, removed)
            ctx.log(f"data: {manifest.files} files, {manifest.bytes} bytes from {source} "
                    f"(fetched {fetched}, removed {removed} stale)")
            return manifest
        ctx.log(f"data: attempt {attempt}: local tree differs from the bucket: "
                + "; ".join(problems[:SHOW]))
    raise PhaseFailed(PHASE, f"{len(problems)} difference(s) between {target} and {source}: "
                             + "; ".join(problems[:SHOW]))


def fetch(tool: S3Tool, source: str, target: Path, expected: dict[str, int]) -> int:
    """Download what is missing or changed; the number of files fetched."""
    present, _ = local_files(target)
    try:
        if not present:  # nothing to compare against: copy, don't sync
            tool.cp_down(source + "*", str(target))
            return len(expected)
        return tool.sync_down(source + "*", str(target)).copied
    except ToolError as exc:
        raise PhaseFailed(PHASE, str(exc)) from None


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
    """``{relative path: (size, etag)}`` of every object under ``source``; refuses an empty
    prefix, keys that are not plain relative paths, and keys a filesystem cannot hold."""
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
