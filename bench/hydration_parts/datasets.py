"""The data sets: their incompressible contents, their upload to the bucket as the server's
admin, and the set of objects changed in the bucket before each incremental sync."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from launcher.runner.s3 import error_messages
from launcher.sandbox.s3server import S3Server

from .shared import BUCKET, KIB, MIB, POOL_BYTES, SHARD, WRITE_CHUNK, BenchError, tail


class Filler:
    """Incompressible file contents, fast: a random header, then a random pool read from a
    random offset (os.urandom alone is ~170 MB/s here)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.pool = memoryview(os.urandom(POOL_BYTES))

    def write(self, path: Path, size: int) -> str:
        """Write ``size`` fresh bytes to ``path``; return their sha256."""
        digest = hashlib.sha256()
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as out:
            head = self.rng.randbytes(min(64, size))
            out.write(head)
            digest.update(head)
            left, offset = size - len(head), self.rng.randrange(POOL_BYTES)
            while left > 0:
                piece = self.pool[offset:offset + min(left, WRITE_CHUNK, POOL_BYTES - offset)]
                out.write(piece)
                digest.update(piece)
                left -= len(piece)
                offset = (offset + len(piece)) % POOL_BYTES
        return digest.hexdigest()


@dataclass
class DataSet:
    """``count`` files of ``size`` bytes under ``datasets/<name>/``; ``changed`` of them are
    changed before each incremental sync. ``expected`` and ``sizes`` follow the bucket."""

    name: str
    count: int
    size: int
    changed: int
    expected: dict[str, str] = field(default_factory=dict)  # rel path -> sha256
    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return f"datasets/{self.name}/"

    @property
    def total(self) -> int:
        return sum(self.sizes.values())

    def rel(self, index: int) -> str:
        name = f"{index:06d}.bin"
        return f"s{index // SHARD:02d}/{name}" if self.count > SHARD else name

    def describe(self) -> str:
        unit = f"{self.size // MIB} MiB" if self.size >= MIB else f"{self.size // KIB} KiB"
        return f"{self.count:,} × {unit} = {self.count * self.size / MIB:,.0f} MiB"


class Admin:
    """Writes to the bucket as the server's admin (setup and the incremental changes)."""

    def __init__(self, server: S3Server, s5cmd: str, work: Path, timeout: float) -> None:
        self.server = server
        self.s5cmd = s5cmd
        self.stage = work / "stage"
        self.timeout = timeout

    def s5(self, *args: str) -> str:
        argv = [self.s5cmd, f"--endpoint-url={self.server.endpoint}", "--json",
                "--numworkers=32", *args]
        done = subprocess.run(argv, env=self.server.env(), capture_output=True, text=True,
                              timeout=self.timeout, check=False)
        if done.returncode or error_messages(done.stderr):
            raise BenchError(f"s5cmd {args[0]} failed: {tail(done.stderr, 500)}")
        return done.stdout

    def create(self, ds: DataSet, filler: Filler) -> None:
        """Write the data set, upload it in one s5cmd call, check the listing."""
        root = self.stage / ds.name
        for index in range(ds.count):
            rel = ds.rel(index)
            ds.expected[rel] = filler.write(root / rel, ds.size)
            ds.sizes[rel] = ds.size
        self.s5("cp", f"{root}/", f"s3://{BUCKET}/{ds.prefix}")
        shutil.rmtree(root)
        listed = self.listing(ds)
        if {rel: size for rel, (size, _) in listed.items()} != ds.sizes:
            raise BenchError(f"{ds.name}: the bucket holds {len(listed)} objects, "
                             f"expected {ds.count}")

    def put(self, ds: DataSet, filler: Filler, rel: str, size: int) -> None:
        path = self.stage / "changes" / rel
        ds.expected[rel] = filler.write(path, size)
        ds.sizes[rel] = size
        self.s5("cp", "--raw", str(path), f"s3://{BUCKET}/{ds.prefix}{rel}")
        path.unlink()

    def listing(self, ds: DataSet) -> dict[str, tuple[int, float]]:
        """``{rel: (size, LastModified as epoch seconds)}``."""
        found = {}
        for line in self.s5("ls", f"s3://{BUCKET}/{ds.prefix}*").splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                item = json.loads(line)
                if item.get("type") == "file":
                    rel = item["key"].split("/", 3)[3][len(ds.prefix):]
                    stamp = datetime.fromisoformat(item["last_modified"].replace("Z", "+00:00"))
                    found[rel] = (int(item["size"]), stamp.timestamp())
        return found


@dataclass
class Change:
    rel: str
    kind: str  # "resized", "natural" (same size), "hidden" (same size, mtime hidden)


def plan_changes(ds: DataSet, rng: random.Random) -> list[Change]:
    """``ds.changed`` distinct files: ~30 % natural, ~30 % mtime-hidden same-size rewrites
    (at least one of each), the rest resized."""
    picked = rng.sample(sorted(ds.expected), ds.changed)
    natural = hidden = max(1, round(ds.changed * 0.3))
    kinds = ["natural"] * natural + ["hidden"] * hidden
    kinds += ["resized"] * (ds.changed - len(kinds))
    return [Change(rel, kind) for rel, kind in zip(picked, kinds, strict=True)]
