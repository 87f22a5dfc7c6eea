"""Trainer accounts for sandbox machines: one existing unprivileged account per live machine.

The runner trains as ``paths.trainer_user`` and, after training, stops every process of that
user. Two machines training as one account would stop each other's training, so a machine
is refused while its account has processes — and a cluster, whose nodes train at the same
time, needs one account per machine. The sandbox never creates accounts: a
:class:`TrainerPool` hands out existing system accounts that have no login shell and are
not uid 0 (``nobody``, then ``daemon``, ``bin``, ``sys``, …: whichever of
:data:`SYSTEM_ACCOUNTS` this machine has), one per machine from boot until the machine is
deleted (or the backend closes), and never one that has processes running.

Not root, the runner cannot train as anyone else: the pool is the current user alone,
shared by every machine (the runner never stops its own uid's processes). That keeps
one-machine runs as they were; several machines then train as one account, which a real
cluster never does — run cluster tests as root.
"""

from __future__ import annotations

import os
import pwd
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from launcher.runner import statefiles
from launcher.sandbox.boot import BootRefused
from launcher.sandbox.local import check_trainer

# Debian/Ubuntu's static system accounts (base-passwd), nobody first: long-standing, with
# no login shell, owning no running process on a machine that runs no such services.
SYSTEM_ACCOUNTS = ("nobody", "daemon", "bin", "sys", "games", "man", "lp", "mail", "news",
                   "uucp", "proxy", "www-data", "backup", "list", "irc")
NO_LOGIN_SHELLS = ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false")


def usable_accounts(names: Iterable[str] = SYSTEM_ACCOUNTS) -> tuple[str, ...]:
    """Those of ``names`` that exist here, are not uid 0 and have no login shell."""
    found = []
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid != 0 and entry.pw_shell in NO_LOGIN_SHELLS:
            found.append(name)
    return tuple(found)


class TrainerPool:
    """Hands each live machine its own trainer account (see the module's text).

    ``accounts``: the accounts to hand out, in order; each is checked with
    :func:`~launcher.sandbox.local.check_trainer` (exists, not uid 0, ``root`` reachable).
    ``shared``: hand every machine the first account, busy or not (so is an account that
    is this process's own user: the runner never stops its own uid's processes). Raises
    ValueError when no account can train here."""

    def __init__(self, accounts: Iterable[str], root: Path, *, shared: bool = False,
                 busy: Callable[[int], list[int]] = statefiles.pids_of_user) -> None:
        names = tuple(dict.fromkeys(accounts))
        if not names:
            raise ValueError("no trainer account to hand out")
        self._uids = {name: check_trainer(name, root) for name in names}
        self._names = names
        own = (os.getuid(), os.geteuid())
        self._shared = shared or self._uids[names[0]] in own
        self._busy = busy
        self._lock = threading.Lock()
        self._held: dict[str, str] = {}  # instance id -> account

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    @property
    def first(self) -> str:
        return self._names[0]

    def take(self, instance_id: str) -> str:
        """The account ``instance_id`` trains as (the same one if it already holds one);
        :class:`BootRefused` when every account is held or has processes running."""
        with self._lock:
            if instance_id in self._held:
                return self._held[instance_id]
            if self._shared:
                self._held[instance_id] = self._names[0]
                return self._names[0]
            held = set(self._held.values())
            busy = {}
            for name in self._names:
                if name in held:
                    continue
                pids = self._busy(self._uids[name])
                if not pids:
                    self._held[instance_id] = name
                    return name
                busy[name] = pids
        raise BootRefused(self._refusal(held, busy))

    def _refusal(self, held: set[str], busy: dict[str, list[int]]) -> str:
        parts = [f"{len(held)} held by live machines"] if held else []
        parts += [f"{name} has processes running ({', '.join(map(str, pids[:5]))})"
                  for name, pids in busy.items()]
        return (f"no free trainer account among {', '.join(self._names)}: "
                f"{'; '.join(parts)}; the runner stops every process of its trainer after "
                "training, so machines may not share one")

    def release(self, instance_id: str) -> str | None:
        """Give ``instance_id``'s account back; the account, or None if it held none."""
        with self._lock:
            return self._held.pop(instance_id, None)

    def holder(self, instance_id: str) -> str | None:
        with self._lock:
            return self._held.get(instance_id)

    def uid(self, name: str) -> int:
        return self._uids[name]

    def stoppable(self, name: str) -> bool:
        """Whether every process of ``name`` may be stopped for one machine: it is held by
        one machine only, and is neither root nor this process's user."""
        uid = self._uids[name]
        return not self._shared and uid not in (0, os.getuid(), os.geteuid())

    def processes(self, name: str) -> list[int]:
        """The running processes of ``name`` when they belong to one machine alone (see
        :meth:`stoppable`); [] for a shared account, whose processes are nobody's alone."""
        if not name or not self.stoppable(name):
            return []
        return statefiles.pids_of_user(self._uids[name])

    def hand_back(self, instance_id: str, *, grace_s: float,
                  log: Callable[[str], None]) -> bool:
        """The machine ``instance_id`` is gone, so is every process of its account (torchrun's
        workers lead sessions of their own, outside the machine's process groups): SIGTERM,
        SIGKILL after ``grace_s``, then the account is free again. False, the account still
        held and the survivors logged, when some process would not end."""
        name = self.holder(instance_id)
        if name and self.processes(name):
            log(f"sandbox {instance_id}: stopping what still runs as {name}")
            left = statefiles.stop_user(self._uids[name], grace_s=grace_s)
            if left:
                log(f"sandbox {instance_id}: ERROR: {name} still has processes {left[:5]}; "
                    "its account stays held")
                return False
        self.release(instance_id)
        return True


def default_pool(root: Path, trainer_user: str | None = None) -> TrainerPool:
    """``trainer_user`` alone when given (machines then take turns: one is refused while
    another's training runs as it); as root, every usable system account; else the current
    user, shared."""
    if trainer_user:
        return TrainerPool((trainer_user,), root)
    if os.geteuid() == 0:
        accounts = usable_accounts()
        if not accounts:
            raise ValueError("no unprivileged system account without a login shell here "
                             f"(looked for {', '.join(SYSTEM_ACCOUNTS)}); pass trainer_user=")
        return TrainerPool(accounts, root)
    return TrainerPool((pwd.getpwuid(os.geteuid()).pw_name,), root, shared=True)
