"""The volume phase: find the attached block device, make a filesystem only if it is blank,
mount it at ``spec.volume.mount_point`` and lay out the run's directories.

Finding the device. Vultr's block device is ``/dev/disk/by-id/virtio-<mount_id>``, but udev
sometimes fails to create that link, so every poll also scans ``/sys/block/*/serial``. A
virtio-blk serial holds at most 20 bytes (``VIRTIO_BLK_ID_BYTES``), so the kernel, and udev's
link name after it, may carry only ``mount_id[:20]``: both the link name and the serial match
when they equal ``mount_id`` or ``mount_id[:20]``. Two devices matching is ambiguous and fails
the phase. ``/dev/vdb`` is never assumed.

Formatting. ``blkid -p -o export <dev>`` probes the device itself (``-p``: no cache, which may
be stale for a volume attached seconds ago). Per blkid(8), exit status 2 means nothing was
identified; only exit 2 with empty output, empty stderr and a device that still exists counts
as blank (blkid also exits 2, silently, for a path that does not exist). Any other outcome,
including a partition table without a filesystem, is never formatted: an existing filesystem of
any type is mounted as it is, and anything unclear fails the phase. A kept volume therefore
keeps its data.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from launcher.runner import tools, users
from launcher.runner.context import Context
from launcher.runner.status import PhaseFailed

SERIAL_BYTES = 20
LABEL = "launcher-cache"
LAYOUT = ("data", "cache", "checkpoints", "reports", "logs")
TRAINER_WRITABLE = ("cache", "checkpoints", "reports")
MKFS_ARGS = {
    "ext4": ("-q", "-L", LABEL, "-E", "lazy_itable_init=1,lazy_journal_init=1"),
    "xfs": ("-q", "-L", LABEL[:12]),  # xfs labels hold 12 characters
}
BLKID_TIMEOUT = 60
MKFS_TIMEOUT = 1800
MOUNT_TIMEOUT = 120


@dataclass(frozen=True)
class HostPaths:
    """Where the host's device and mount facts live; tests point these into a temp dir
    (and set ``block_only=False`` so plain files can stand in for block devices)."""

    by_id: Path = Path("/dev/disk/by-id")
    sys_block: Path = Path("/sys/block")
    dev: Path = Path("/dev")
    mounts: Path = Path("/proc/self/mounts")
    fstab: Path = Path("/etc/fstab")
    block_only: bool = True


HOST = HostPaths()


@dataclass(frozen=True)
class Layout:
    """The run's directories on the volume (absolute paths, as strings)."""

    data: str
    cache: str
    checkpoints: str
    reports: str
    logs: str

    @classmethod
    def under(cls, mount_point: str | Path) -> Layout:
        return cls(**{name: str(Path(mount_point) / name) for name in LAYOUT})


@dataclass(frozen=True)
class Filesystem:
    """What blkid found: ``fs_type`` empty means blank."""

    fs_type: str
    uuid: str


@dataclass(frozen=True)
class VolumeResult:
    """``formatted`` is True only when this call ran mkfs; ``fs_type`` is what is mounted,
    which may differ from the spec's when the volume already carried another filesystem."""

    device: str
    formatted: bool
    mount_point: str
    layout: Layout
    fs_type: str
    uuid: str
    already_mounted: bool


def prepare(ctx: Context, host: HostPaths = HOST) -> VolumeResult:
    """Wait for the device, mkfs only if blank, mount, record in fstab, lay out directories.
    Raises PhaseFailed("volume", reason) on any failure."""
    spec = ctx.spec.volume
    device = wait_for_device(ctx, host)
    ctx.log(f"volume: device {device} for mount_id {spec.mount_id}")
    found = probe(ctx, device, host)
    formatted = False
    if not found.fs_type:
        found = make_filesystem(ctx, device, host)
        formatted = True
    elif found.fs_type != spec.fs_type:
        ctx.reporter.note(f"volume: {device} already holds {found.fs_type}, not {spec.fs_type}; "
                          "mounting it as it is (never reformatted)")
    mounted = is_mounted(ctx, device, spec.mount_point, host)
    if not mounted:
        mount(ctx, device, found.fs_type, spec.mount_point)
    add_fstab(ctx, found, spec.mount_point, host)
    layout = lay_out(spec.mount_point, ctx.spec.paths.trainer_user)
    return VolumeResult(device, formatted, spec.mount_point, layout, found.fs_type, found.uuid,
                        mounted)


def wait_for_device(ctx: Context, host: HostPaths = HOST) -> str:
    """Poll (with backoff, until ``device_wait_s``) for the volume's device path."""
    mount_id = ctx.spec.volume.mount_id
    found: list[str] = []

    def attempt() -> bool:
        device = find_device(mount_id, host)
        if device:
            found.append(device)
        return bool(device)

    try:
        tools.retry_until(attempt, deadline_s=ctx.spec.volume.device_wait_s,
                          what=f"block device for mount_id {mount_id}", first_delay=1.0,
                          max_delay=15.0, clock=ctx.clock, sleep=ctx.sleep)
    except TimeoutError as exc:
        raise PhaseFailed("volume", f"{exc} (no {host.by_id}/virtio-{mount_id}, "
                          f"no serial match in {host.sys_block})") from None
    return found[-1]


def serial_matches(serial: str, mount_id: str) -> bool:
    """A serial names the volume when it is ``mount_id`` or its first 20 bytes (virtio-blk
    truncates serials to 20 bytes)."""
    serial = serial.strip().strip("\x00")
    return bool(serial) and serial in (mount_id, mount_id[:SERIAL_BYTES])


def find_device(mount_id: str, host: HostPaths = HOST) -> str:
    """The device path for ``mount_id`` now, or "" if none yet. Ambiguity raises."""
    if not mount_id:
        raise PhaseFailed("volume", "spec.volume.mount_id is empty")
    for name in dict.fromkeys((mount_id, mount_id[:SERIAL_BYTES])):
        link = host.by_id / f"virtio-{name}"
        if link.exists() and _usable(link, host):
            return os.path.realpath(link)
    matches = []
    for serial_file in sorted(host.sys_block.glob("*/serial")):
        try:
            serial = serial_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        device = host.dev / serial_file.parent.name
        if serial_matches(serial, mount_id) and device.exists() and _usable(device, host):
            matches.append(str(device))
    if len(matches) > 1:
        raise PhaseFailed("volume", f"serial {mount_id!r} matches several devices: "
                          f"{', '.join(matches)}; refusing to guess")
    return matches[0] if matches else ""


def _usable(path: Path, host: HostPaths) -> bool:
    return not host.block_only or stat.S_ISBLK(path.stat().st_mode)


def probe(ctx: Context, device: str, host: HostPaths = HOST) -> Filesystem:
    """What filesystem ``device`` holds; ``fs_type == ""`` only when certainly blank."""
    if not Path(device).exists() or not _usable(Path(device), host):
        raise PhaseFailed("volume", f"{device} vanished before it could be probed")
    try:
        result = tools.run(["blkid", "-p", "-o", "export", device], timeout=BLKID_TIMEOUT,
                           env=ctx.base_env, check=False)
    except tools.ToolError as exc:
        raise PhaseFailed("volume", f"cannot probe {device}: {exc}") from None
    if result.returncode == 2 and not result.stdout.strip() and not result.stderr.strip():
        return Filesystem("", "")
    fields = parse_export(result.stdout)
    if result.returncode != 0 or not fields.get("TYPE"):
        said = " ".join((result.stderr or result.stdout).split())[:200]
        raise PhaseFailed("volume", f"blkid {device}: exit {result.returncode}, no filesystem "
                          f"type ({said or 'no output'}); not formatting an unclear volume")
    return Filesystem(fields["TYPE"], fields.get("UUID", ""))


def parse_export(text: str) -> dict[str, str]:
    """``KEY=value`` lines of ``blkid -o export``."""
    pairs = (line.partition("=") for line in text.splitlines())
    return {key.strip(): value.strip() for key, sep, value in pairs if sep and key.strip()}


def make_filesystem(ctx: Context, device: str, host: HostPaths = HOST) -> Filesystem:
    """mkfs the blank ``device`` with the spec's type, then probe it again."""
    fs_type = ctx.spec.volume.fs_type
    if fs_type not in MKFS_ARGS:
        raise PhaseFailed("volume", f"cannot format as {fs_type!r}: supported are "
                          f"{', '.join(sorted(MKFS_ARGS))}")
    ctx.reporter.note(f"volume: {device} is blank; formatting it as {fs_type}")
    try:
        tools.run([f"mkfs.{fs_type}", *MKFS_ARGS[fs_type], device], timeout=MKFS_TIMEOUT,
                  env=ctx.base_env)
    except tools.ToolError as exc:
        raise PhaseFailed("volume", f"mkfs failed: {exc}") from None
    made = probe(ctx, device, host)
    if not made.fs_type:
        raise PhaseFailed("volume", f"{device} still blank after mkfs.{fs_type}")
    return made


def read_mounts(host: HostPaths = HOST) -> list[tuple[str, str]]:
    """(source, mount point) pairs from the mounts table, octal escapes decoded."""
    pairs = []
    for line in host.mounts.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split()
        if len(fields) >= 2:
            pairs.append((_unescape(fields[0]), _unescape(fields[1])))
    return pairs


def _unescape(field: str) -> str:
    """The kernel writes space, tab, newline and backslash as octal escapes (``\\040``)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def is_mounted(ctx: Context, device: str, mount_point: str, host: HostPaths = HOST) -> bool:
    """Whether ``device`` is already mounted at ``mount_point``; something else there fails."""
    target = os.path.realpath(mount_point)
    for source, where in read_mounts(host):
        if os.path.realpath(where) != target:
            continue
        if os.path.realpath(source) == os.path.realpath(device):
            ctx.log(f"volume: {device} already mounted at {mount_point}")
            return True
        raise PhaseFailed("volume", f"{mount_point} already has {source} mounted, not {device}")
    return False


def mount(ctx: Context, device: str, fs_type: str, mount_point: str) -> None:
    Path(mount_point).mkdir(parents=True, exist_ok=True)
    try:
        tools.run(["mount", "-t", fs_type, "-o", "noatime", device, mount_point],
                  timeout=MOUNT_TIMEOUT, env=ctx.base_env)
    except tools.ToolError as exc:
        raise PhaseFailed("volume", f"cannot mount {device} at {mount_point}: {exc}") from None


def fstab_line(found: Filesystem, mount_point: str) -> str:
    """``nofail`` so a reboot without the volume still boots; fsck pass 2 for ext*."""
    passno = 2 if found.fs_type.startswith("ext") else 0
    return f"UUID={found.uuid} {mount_point} {found.fs_type} defaults,noatime,nofail 0 {passno}"


def add_fstab(ctx: Context, found: Filesystem, mount_point: str, host: HostPaths = HOST) -> None:
    """Record the mount in fstab (survives a reboot); replaces an older line for the same
    mount point, never adds the same line twice. Written atomically."""
    if not found.uuid:
        ctx.reporter.note(f"volume: {found.fs_type} has no UUID; not recorded in fstab")
        return
    wanted = fstab_line(found, mount_point)
    old = host.fstab.read_text(encoding="utf-8") if host.fstab.exists() else ""
    kept = [line for line in old.splitlines()
            if line.lstrip().startswith("#") or len(line.split()) < 2
            or line.split()[1] != mount_point]
    if wanted in old.splitlines() and len(kept) == len(old.splitlines()) - 1:
        return
    text = "\n".join([*kept, wanted]) + "\n"
    temp = host.fstab.with_name(host.fstab.name + ".launcher-tmp")
    temp.write_text(text, encoding="utf-8")
    if host.fstab.exists():
        os.chmod(temp, stat.S_IMODE(host.fstab.stat().st_mode))
    os.replace(temp, host.fstab)
    ctx.log(f"volume: fstab: {wanted}")


def lay_out(mount_point: str, trainer_user: str) -> Layout:
    """Create the run's directories; the trainer (when it exists) owns the writable ones."""
    layout = Layout.under(mount_point)
    for name in LAYOUT:
        Path(mount_point, name).mkdir(mode=0o755, exist_ok=True)
    user = users.lookup(trainer_user)
    if user is not None:  # else train.run creates the user and hands these over then
        users.hand_over((Path(mount_point, name) for name in TRAINER_WRITABLE), user)
    return layout
