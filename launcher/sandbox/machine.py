"""A sandbox machine on disk: its host root, the files its document writes, its block devices.

Layout under the backend's ``root_dir``::

    bin/                        the fake machine tools (copied from tools/, first on PATH)
    blocks/<block-id>.img       each block volume's backing file (sparse; kept across detach)
    <instance-id>/console.log   the runner's stdout and stderr (journald's stand-in)
    <instance-id>/host/         the machine's "/": what the document writes, /dev, /sys/block,
                                /proc/mounts, /etc/fstab, cloud-init's cache, /root, /tmp,
                                an SSH host key in /etc/ssh (no SSH server listens)

``<host>/etc/launcher/sandbox.json`` (next to ``run.json``) says how this machine differs from
a real instance: the spec rewrites, the runner's argv and environment, what is not emulated.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from launcher.sandbox.document import FileEntry

TOOLS_DIR = Path(__file__).resolve().parent / "tools"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SERVICE_UMASK = 0o022  # systemd's default UMask= for a service such as the runner's
SERIAL_BYTES = 20  # a virtio-blk serial holds 20 bytes; udev's by-id name follows it
DEVICE_NAMES = tuple(f"vd{letter}" for letter in "bcdefghijklmnopqrstuvwxyz")
BASE_MOUNTS = "proc /proc proc rw 0 0\nsandbox / sandbox rw 0 0\n"
BASE_FSTAB = "# /etc/fstab of a launcher sandbox machine\n"
DIR_MODE = 0o755
# A backing file's size is nominal: only its first bytes are read (the fake mkfs's marker);
# what the run writes "to the volume" lands in the mount point, a plain directory. Small, so
# a filesystem without sparse files pays little.
IMAGE_BYTES = 16 * 2**20
HOST_KEY = "etc/ssh/ssh_host_ed25519_key"
# Used when ssh-keygen is missing: a real public key, whose private half nobody kept.
FIXED_HOST_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG0OKnUAf/Sse7PYf6DgynlDrCYq0ndlWbwbUTx6"
                  "F1LF root@sandbox")
KEYGEN_TIMEOUT_S = 20.0


def make_dirs(path: Path, mode: int = DIR_MODE) -> Path:
    """``mkdir -p`` whose new directories get exactly ``mode`` (mkdir's own mode is cut by
    the umask, and an unprivileged trainer must be able to enter them)."""
    missing = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)
        directory.chmod(mode)
    return path


def host_path(host: Path, path: str) -> Path:
    """The instance's absolute ``path`` under ``host`` (``path`` was checked to be clean)."""
    return host / PurePosixPath(path).relative_to("/")


def install_tools(dest: Path, python: str) -> Path:
    """Copy the fake tools into ``dest`` (0755) with their shebang set to ``python``: the
    shipped ``#!/usr/bin/env python3`` would find the fake ``python3`` itself on this PATH."""
    make_dirs(dest)
    for source in sorted(TOOLS_DIR.iterdir()):
        if not source.is_file() or source.name.startswith(".") or source.suffix == ".pyc":
            continue
        text = source.read_text(encoding="utf-8")
        if text.startswith("#!"):
            text = f"#!{python}\n" + text.split("\n", 1)[1]
        target = dest / source.name
        target.write_text(text, encoding="utf-8")
        target.chmod(0o755 if source.name[0] != "_" else 0o644)
    return dest


def make_host(host: Path, instance_id: str, user_data: bytes) -> None:
    """The machine's empty "/": device and mount tables, fstab, home, tmp, and cloud-init's
    cache holding the user data (0600), which the runner's hardening phase removes."""
    for sub in ("dev/disk/by-id", "sys/block", "proc", "etc", "root", "tmp", "var/log"):
        make_dirs(host / sub)
    (host / "tmp").chmod(0o1777)
    (host / "proc/mounts").write_text(BASE_MOUNTS, encoding="utf-8")
    (host / "etc/fstab").write_text(BASE_FSTAB, encoding="utf-8")
    cache = host / "var/lib/cloud/instances" / instance_id
    make_dirs(cache.parent)
    make_dirs(cache, 0o700)
    copy = cache / "user-data.txt"
    fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(user_data)
    link = host / "var/lib/cloud/instance"
    if not link.is_symlink():
        link.symlink_to(f"instances/{instance_id}")


def write_host_key(host: Path, instance_id: str) -> str:
    """What cloud-init does before the runner starts: an ed25519 host key pair in
    ``etc/ssh``, made by ssh-keygen when there is one (else a fixed public key). Returns how
    it was made, for ``sandbox.json``."""
    key = host / HOST_KEY
    make_dirs(key.parent)
    for path in (key, key.with_name(key.name + ".pub")):
        path.unlink(missing_ok=True)
    keygen = shutil.which("ssh-keygen")
    if keygen:
        done = subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C",
                               f"root@{instance_id}", "-f", str(key)], capture_output=True,
                              timeout=KEYGEN_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
        if done.returncode == 0 and key.with_name(key.name + ".pub").is_file():
            return "ssh-keygen"
    key.with_name(key.name + ".pub").write_text(FIXED_HOST_KEY + "\n", encoding="ascii")
    return "fixed"


def write_files(host: Path, entries: Iterable[FileEntry],
                replaced: dict[str, bytes]) -> list[dict[str, object]]:
    """Write each entry under ``host`` with its mode (``replaced`` maps a path to the bytes
    written instead, e.g. the rewritten run.json). Returns one summary per file — path,
    where it went, encoding, mode, owner, size — and never any content."""
    written = []
    for entry in entries:
        target = host_path(host, entry.path)
        make_dirs(target.parent)
        data = replaced.get(entry.path, entry.data)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(target, entry.mode)
        written.append({"path": entry.path, "sandbox_path": str(target),
                        "encoding": entry.encoding, "permissions": f"{entry.mode:04o}",
                        "owner": entry.owner, "owner_applied": _owner_applied(entry.owner),
                        "bytes": len(data), "rewritten": entry.path in replaced})
    return written


def _owner_applied(owner: str) -> str:
    """Whether the file's owner is what the document asked (files are never chowned)."""
    if os.geteuid() == 0 and owner in ("", "root", "root:root"):
        return "yes"
    return f"no: owned by uid {os.geteuid()}, the user running the sandbox"


def write_sandbox_json(path: Path, record: dict[str, object]) -> None:
    """``sandbox.json`` (0644): what differs from a real instance. Holds no secret."""
    make_dirs(path.parent)
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    path.chmod(0o644)


# -- block devices ----------------------------------------------------------------------------

def attach_device(root: Path, host: Path, block_id: str, mount_id: str, *,
                  fresh: bool = False) -> str:
    """Hot-plug ``block_id`` into ``host``: ``dev/vdX`` (a hard link to the block's sparse
    backing file, so its marker outlives a detach), ``dev/disk/by-id/virtio-<serial>`` and
    ``sys/block/vdX/serial``. ``fresh``: the block is new to this backend, so a backing file
    left by an earlier session under the same id is dropped. Returns the device name."""
    image = root / "blocks" / f"{block_id}.img"
    make_dirs(image.parent)
    if fresh:
        image.unlink(missing_ok=True)
    if not image.exists():
        with open(image, "wb") as handle:
            handle.truncate(IMAGE_BYTES)  # sparse: reads as zeros, costs nothing
    for sub in ("dev/disk/by-id", "sys/block"):  # the attach may beat the boot thread
        make_dirs(host / sub)
    name = next(n for n in DEVICE_NAMES if not (host / "dev" / n).exists()
                and not (host / "sys/block" / n).exists())
    device = host / "dev" / name
    try:
        os.link(image, device)
    except OSError:  # another filesystem: a symlink resolves to the image instead
        device.symlink_to(image)
    serial = mount_id[:SERIAL_BYTES]
    make_dirs(host / "sys/block" / name)
    (host / "sys/block" / name / "serial").write_text(serial + "\n", encoding="utf-8")
    by_id = host / "dev/disk/by-id" / f"virtio-{serial}"
    if by_id.is_symlink():
        by_id.unlink()
    by_id.symlink_to(f"../../{name}")
    return name


def detach_device(host: Path, name: str, mount_id: str) -> None:
    """Unplug device ``name``: its /dev entry, by-id link and sysfs directory go."""
    by_id = host / "dev/disk/by-id" / f"virtio-{mount_id[:SERIAL_BYTES]}"
    for path in (by_id, host / "dev" / name):
        if path.is_symlink() or path.exists():
            path.unlink()
    shutil.rmtree(host / "sys/block" / name, ignore_errors=True)


def set_aside(directory: Path) -> Path | None:
    """Rename an existing ``directory`` to ``<name>.previous-<n>`` (a machine dir from an
    earlier session: its state files would make a new runner resume the old run)."""
    if not directory.exists():
        return None
    for number in range(1, 10_000):
        target = directory.with_name(f"{directory.name}.previous-{number}")
        if not target.exists():
            directory.rename(target)
            return target
    raise OSError(f"too many earlier machines named {directory.name} in {directory.parent}")


def traversable_by_others(path: Path) -> Path | None:
    """The first directory from ``/`` down to ``path`` that others cannot enter (no o+x),
    or None when an unprivileged trainer can reach ``path``."""
    current = Path("/")
    for part in path.resolve().parts[1:]:
        current = current / part
        try:
            mode = current.stat().st_mode
        except OSError:
            return current
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            return current
    return None
