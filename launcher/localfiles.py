"""Reading a file the user named (a configuration file, a ``.env``, packer's manifest, a
public key): bounded in size, never blocking, and every failure one ConfigError naming it.

Only a regular file is read: a FIFO would block for ever and ``/dev/zero`` never ends (read
whole, it fills memory). ``/dev/null``, the usual way to say "none", reads as empty.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from launcher.errors import ConfigError

KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
         (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"))
CHUNK = 1 << 16


@dataclass(frozen=True)
class LocalFile:
    """What was read, and the file's mode (for a permissions warning)."""

    data: bytes
    mode: int


def is_devnull(info: os.stat_result) -> bool:
    """``/dev/null``: read as an empty file."""
    if not stat.S_ISCHR(info.st_mode):
        return False
    null = os.stat(os.devnull)
    return (info.st_rdev, info.st_dev) == (null.st_rdev, null.st_dev)


def read_local(path: Path, *, expected: str, limit: int) -> LocalFile | None:
    """The bytes of ``path``, None when it does not exist. ``expected`` says what it should
    be ("a regular file of NAME=value lines") for the error about anything else; a file over
    ``limit`` bytes is refused without reading it all."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if is_devnull(info):
            return LocalFile(b"", info.st_mode)
        if not stat.S_ISREG(info.st_mode):
            kind = next((name for test, name in KINDS if test(info.st_mode)), "not a file")
            raise ConfigError(f"{path}: expected {expected}, not {kind}")
        return LocalFile(_read_at_most(fd, path, limit), info.st_mode)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _read_at_most(fd: int, path: Path, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := os.read(fd, CHUNK):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise ConfigError(f"{path}: larger than {limit:,} bytes, the most this file may "
                              "hold")
    return b"".join(chunks)


def read_text(path: Path, *, expected: str, limit: int) -> str:
    """:func:`read_local` as UTF-8 text; a missing file is a ConfigError too."""
    found = read_local(path, expected=expected, limit=limit)
    if found is None:
        raise ConfigError(f"{path}: not found")
    try:
        return found.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}: "
                          f"{exc.object[exc.start:exc.start + 1]!r})") from None
