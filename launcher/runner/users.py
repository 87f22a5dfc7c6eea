"""The unprivileged trainer account: created if missing, and handed the directories it writes.

The training command never runs as root. The account is a system user with a home directory
(some libraries insist on ``~``) and no login shell; its name comes from the spec and is
checked before it reaches ``useradd`` so it can never be read as an option.
"""

from __future__ import annotations

import os
import pwd
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from launcher.runner import tools
from launcher.runner.status import PhaseFailed

USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
USERADD_TIMEOUT = 60
HANDOVER_LIMIT = 200_000  # entries chowned per tree; a bigger tree is left as it is, noted


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    home: str


def lookup(name: str) -> User | None:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return User(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def ensure(name: str, env: Mapping[str, str], phase: str = "train") -> User:
    """The account ``name``, created (``useradd --system``) if missing. Idempotent; refuses
    a malformed name and an account with uid 0."""
    if not USER_NAME.match(name):
        raise PhaseFailed(phase, f"trainer_user {name!r} is not a valid user name")
    user = lookup(name)
    if user is None:
        _create(name, env, phase)
        user = lookup(name)
    if user is None:
        raise PhaseFailed(phase, f"user {name} still missing after useradd")
    if user.uid == 0:
        raise PhaseFailed(phase, f"trainer_user {name} has uid 0; refusing to train as root")
    return user


def _create(name: str, env: Mapping[str, str], phase: str) -> None:
    try:
        tools.run(["useradd", "--system", "--create-home", "--user-group",
                   "--shell", "/usr/sbin/nologin", name], timeout=USERADD_TIMEOUT, env=dict(env))
    except tools.ToolError as exc:
        if lookup(name) is None:  # else another process created it meanwhile: fine
            raise PhaseFailed(phase, f"cannot create user {name}: {exc}") from None


def hand_over(paths: Iterable[str | Path], user: User) -> int:
    """Create each directory (0755) and give it, and what is in it, to ``user``. A kept
    volume may hold files from an earlier account's uid, hence the bounded walk. Returns
    the number of entries changed."""
    changed = 0
    for top in paths:
        Path(top).mkdir(mode=0o755, parents=True, exist_ok=True)
        changed += _chown_tree(Path(top), user, HANDOVER_LIMIT)
    return changed


def _chown_tree(top: Path, user: User, limit: int) -> int:
    changed = _chown(top, user)
    seen = 1
    for root, dirs, files in os.walk(top):  # does not follow symlinks
        for name in dirs + files:
            seen += 1
            if seen > limit:
                return changed
            changed += _chown(Path(root, name), user)
    return changed


def _chown(path: Path, user: User) -> int:
    info = os.lstat(path)
    if (info.st_uid, info.st_gid) == (user.uid, user.gid):
        return 0
    os.chown(path, user.uid, user.gid, follow_symlinks=False)
    return 1
