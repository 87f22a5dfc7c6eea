"""One launch per run id at a time on this machine.

Two ``launcher run --run-id X`` started together would both find nothing for X and both
create it. :func:`run_lock` holds an exclusive, non-blocking ``flock`` on
``<lock dir>/<run id>.lock`` for the whole plan-and-launch; the kernel drops it when the
process ends, however it ends, so a crashed launch never leaves a stale lock. The file keeps
the holder's pid for the error message.

Across machines nothing serializes launches of one run id (Vultr has no conditional create);
run ids made by the launcher carry the second they were made, and a new launch never adopts a
run that already exists.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from launcher.cachedir import user_cache_dir
from launcher.provision.model import RunStateError

LOCK_DIR_VARIABLE = "LAUNCHER_LOCK_DIR"


def default_lock_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$LAUNCHER_LOCK_DIR``, else ``$XDG_CACHE_HOME/launcher/locks``, else
    ``~/.cache/launcher/locks``."""
    env = os.environ if environ is None else environ
    if env.get(LOCK_DIR_VARIABLE):
        return Path(env[LOCK_DIR_VARIABLE])
    return user_cache_dir(env) / "locks"


@contextmanager
def run_lock(run_id: str, lock_dir: Path | None = None) -> Iterator[Path]:
    """Hold the lock of ``run_id``; RunStateError at once when another process holds it."""
    directory = lock_dir or default_lock_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"{run_id}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise RunStateError(
                f"run {run_id} is being launched by another launcher on this machine "
                f"(pid {holder}); wait for it to finish, then `launcher status {run_id}`",
                hint=f"the lock is {path}; it is released when that process ends") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)
