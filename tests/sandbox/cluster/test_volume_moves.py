"""A volume that moves between sandbox machines: the fake ``mount`` shows a read-only mount the
files the volume got where it was mounted read-write before (how node 0 salvages a lost
node's volume), and ``umount`` gives the mount point back empty."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from launcher.sandbox.machine import IMAGE_BYTES, TOOLS_DIR

SPEC = importlib.util.spec_from_file_location("sandbox_fake_tools", TOOLS_DIR / "_fake.py")
fake = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(fake)


@pytest.fixture
def hosts(tmp_path: Path) -> tuple[Path, Path]:
    """Two machines' host roots, each with the same block plugged in (as the hypervisor
    does: a hard link to the block's backing file)."""
    image = tmp_path / "blocks/b1.img"
    image.parent.mkdir()
    with open(image, "wb") as handle:
        handle.truncate(IMAGE_BYTES)
    made = []
    for name, device in (("one", "vdb"), ("two", "vdc")):
        host = tmp_path / name / "host"
        (host / "dev").mkdir(parents=True)
        (host / "proc").mkdir()
        (host / "proc/mounts").write_text("proc /proc proc rw 0 0\n", encoding="utf-8")
        os.link(image, host / "dev" / device)
        made.append(host)
    return made[0], made[1]


def run(monkeypatch, host: Path, tool: str, *args: str | Path) -> int:
    monkeypatch.setenv(fake.HOST_ENV, str(host))
    return fake.main(tool, [str(a) for a in args])


def written_on_one(monkeypatch, one: Path) -> Path:
    """node 1's runner: mkfs, a read-write mount, a checkpoint; the machine then goes away
    without unmounting (as a lost machine does)."""
    assert run(monkeypatch, one, "mkfs.ext4", one / "dev/vdb") == 0
    point = one / "mnt/launcher"
    assert run(monkeypatch, one, "mount", "-t", "ext4", "-o", "defaults,noatime",
               one / "dev/vdb", point) == 0
    (point / "checkpoints").mkdir()
    (point / "checkpoints/model.pt").write_bytes(b"weights")
    assert not point.is_symlink()
    return point


def test_a_read_only_mount_elsewhere_shows_the_volume_files(monkeypatch, hosts):
    one, two = hosts
    written_on_one(monkeypatch, one)
    point = two / "mnt/salvage-1"
    assert run(monkeypatch, two, "mount", "-t", "ext4", "-o", "ro,noatime", two / "dev/vdc",
               point) == 0
    assert (point / "checkpoints/model.pt").read_bytes() == b"weights"
    mounts = (two / "proc/mounts").read_text(encoding="utf-8")
    assert f"{two / 'dev/vdc'} {point} ext4 ro,noatime 0 0" in mounts
    assert run(monkeypatch, two, "umount", point) == 0
    assert point.is_dir() and not point.is_symlink() and not any(point.iterdir())
    assert str(point) not in (two / "proc/mounts").read_text(encoding="utf-8")
    assert (one / "mnt/launcher/checkpoints/model.pt").read_bytes() == b"weights"


def test_a_read_write_mount_elsewhere_stays_a_plain_directory(monkeypatch, hosts):
    one, two = hosts
    written_on_one(monkeypatch, one)
    point = two / "mnt/launcher"
    assert run(monkeypatch, two, "mount", "-t", "ext4", "-o", "defaults", two / "dev/vdc",
               point) == 0
    assert not point.is_symlink() and not any(point.iterdir())


def test_a_read_only_mount_never_hides_what_its_mount_point_holds(monkeypatch, hosts):
    one, two = hosts
    written_on_one(monkeypatch, one)
    point = two / "mnt/salvage-1"
    point.mkdir(parents=True)
    (point / "mine.txt").write_text("two's own file", encoding="utf-8")
    assert run(monkeypatch, two, "mount", "-t", "ext4", "-o", "ro", two / "dev/vdc",
               point) == 0
    assert not point.is_symlink() and sorted(p.name for p in point.iterdir()) == ["mine.txt"]


def test_a_volume_never_mounted_read_write_has_nothing_elsewhere(monkeypatch, hosts):
    one, two = hosts
    assert run(monkeypatch, one, "mkfs.ext4", one / "dev/vdb") == 0
    point = two / "mnt/salvage-1"
    assert run(monkeypatch, two, "mount", "-t", "ext4", "-o", "ro", two / "dev/vdc",
               point) == 0
    assert point.is_dir() and not point.is_symlink() and not any(point.iterdir())
