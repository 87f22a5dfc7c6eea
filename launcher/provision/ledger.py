"""The ledger of what THIS launch created, and the rollback that deletes it.

Before a create is sent, an entry is written without an id (the create may happen even when
the call fails: a timeout, a 5xx, a Ctrl-C mid-request); when the call returns, the id is
filled in. Rollback deletes instances first, then volumes, each retried against a deadline.
An entry without an id is first resolved read-only: instances by this launch's own tag
(``launch:<nonce>``, a random value per invocation: the run tag alone would also find another
launcher's instance of the same run id), volumes by label and region, minus whatever existed
before this launch began. Reused resources never enter the ledger, so a rollback never
deletes them.

Ownership is checked again before a volume is deleted: Vultr cannot tag volumes, so a
volume found by its label (here, or by the client resolving an ambiguous create) may be
another launcher's. One attached to an instance this launch did not create is kept, and the
rollback's report says so with the command that deletes it later.

During a rollback Ctrl-C is ignored with a warning (SIGINT handler on the main thread, and
a KeyboardInterrupt that still arrives is caught): a half-finished rollback would leave
things billing silently. When something cannot be deleted, :class:`Cleanup` lists it with
the commands that delete it.
"""

from __future__ import annotations

import secrets
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

from launcher.errors import NotFoundError
from launcher.naming import launch_tag
from launcher.providers import RunResources
from launcher.provision.deps import LaunchDeps, Progress
from launcher.provision.model import DELETE_DEADLINE_S

Kind = Literal["instance", "volume"]


@dataclass
class Entry:
    """One create this launch sent; ``id`` is None until the call returned."""

    kind: Kind
    label: str
    region: str
    id: str | None = None

    def describe(self) -> str:
        return f"{self.kind} {self.id or '(id unknown)'} ({self.label}, {self.region})"


@dataclass(frozen=True)
class Cleanup:
    """What a rollback deleted, and what remains (each line with its delete command)."""

    deleted: tuple[str, ...] = ()
    remaining: tuple[str, ...] = ()


@dataclass
class Ledger:
    """Creates of one launch, oldest first. ``before`` is what the run held when the launch
    began (never deleted); ``kept`` are notes about things deliberately left (the code
    bundle); ``nonce`` marks this invocation's instances (:func:`launcher.naming.launch_tag`)."""

    run_id: str
    before: RunResources
    entries: list[Entry] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    nonce: str = field(default_factory=lambda: secrets.token_hex(6))

    def sending(self, kind: Kind, label: str, region: str) -> Entry:
        entry = Entry(kind, label, region)
        self.entries.append(entry)
        return entry

    def forget(self, entry: Entry) -> None:
        """``entry`` was deleted on purpose (a failover leaving its region)."""
        self.entries.remove(entry)

    @property
    def empty(self) -> bool:
        return not self.entries

    def preexisting(self) -> set[str]:
        return {r.id for r in (*self.before.instances, *self.before.volumes)}

    def instance_ids(self) -> set[str]:
        """The instances this launch created (whose create returned an id)."""
        return {e.id for e in self.entries if e.kind == "instance" and e.id}


# -- rollback ---------------------------------------------------------------------------------

def rollback(ledger: Ledger, deps: LaunchDeps) -> Cleanup:
    """Delete everything in ``ledger`` (instances, then volumes) that this launch still owns;
    Ctrl-C cannot stop it."""
    progress = deps.progress
    deleted: list[str] = []
    remaining: list[str] = []
    ours = ledger.instance_ids()
    with shielded(progress):
        progress.warn(f"rolling back what this launch created for run {ledger.run_id}")
        for kind in ("instance", "volume"):
            for entry in [e for e in ledger.entries if e.kind == kind]:
                ids, doubt = resolve(entry, ledger, deps)
                if doubt:
                    remaining.append(f"{entry.describe()}: {doubt}; check with `launcher "
                                     f"status {ledger.run_id}`")
                if kind == "instance":
                    ours.update(ids)
                for resource_id in ids:
                    what = f"{kind} {resource_id} ({entry.label}, {entry.region})"
                    keep = not_ours(resource_id, ours, deps) if kind == "volume" else None
                    error = keep or delete_until(kind, resource_id, deps, what)
                    if error is None:
                        deleted.append(what)
                        progress.note(f"deleted {what}")
                    else:
                        how = " then ".join(deps.provider.delete_commands(kind, resource_id))
                        remaining.append(f"{what}: {error}; delete it with: {how}")
    return Cleanup(tuple(deleted), tuple(remaining))


def not_ours(volume_id: str, ours: set[str], deps: LaunchDeps) -> str | None:
    """Why volume ``volume_id`` must be kept: it is attached to an instance that is not in
    ``ours`` (another launcher's, maybe live), or its attachment could not be read. None when
    it may be deleted (detached, attached to one of ours, or gone)."""
    try:
        attached = deps.provider.get_volume(volume_id).attached_to
    except NotFoundError:
        return None
    except (Exception, KeyboardInterrupt) as exc:  # unproven ownership: keep, never guess
        return (f"kept: could not check whether it is attached to an instance this launch did "
                f"not create ({_line(exc)}); once you know it is not in use")
    if attached and attached not in ours:
        return (f"kept: it is attached to instance {attached}, which this launch did not "
                "create (another launch of the same run?); once that instance is gone, if "
                "the volume is not needed")
    return None


def resolve(entry: Entry, ledger: Ledger, deps: LaunchDeps) -> tuple[list[str], str]:
    """The ids ``entry`` stands for, and a doubt when the look-up failed."""
    if entry.id is not None:
        return [entry.id], ""
    ours = {e.id for e in ledger.entries if e.id}
    skip = ledger.preexisting() | ours
    try:
        if entry.kind == "instance":  # only ours: the run tag alone finds others' too
            found = [i.id for i in deps.provider.find_run(ledger.run_id).instances
                     if i.region == entry.region and launch_tag(ledger.nonce) in i.tags]
        else:
            found = [v.id for v in deps.provider.find_volumes(entry.label)
                     if v.region == entry.region]
    except Exception as exc:  # a failed read must not pass for "nothing there"
        return [], f"its create may have happened and the look-up failed ({_line(exc)})"
    return [i for i in found if i not in skip], ""


def delete_until(kind: Kind, resource_id: str, deps: LaunchDeps, what: str) -> str | None:
    """Delete, retrying with backoff until :data:`DELETE_DEADLINE_S`; the last error, or
    None once it is gone (gone already counts)."""
    delete: Callable[[str], bool] = (deps.provider.delete_instance if kind == "instance"
                                     else deps.provider.delete_volume)
    deadline = deps.monotonic() + DELETE_DEADLINE_S
    delay = 2.0
    while True:
        try:
            with deps.progress.waiting(f"deleting {what}"):
                delete(resource_id)
            return None
        except KeyboardInterrupt:
            deps.progress.warn(f"Ctrl-C ignored: still deleting {what}")
            error = "interrupted"
        except Exception as exc:  # every failure is retried, then reported with its command
            error = _line(exc)
        if deps.monotonic() + delay > deadline:
            return error
        deps.progress.warn(f"deleting {what} failed ({error}); retrying in {delay:g}s")
        _pause(deps, delay)
        delay = min(delay * 2, 30.0)


def _pause(deps: LaunchDeps, seconds: float) -> None:
    try:
        deps.sleep(seconds)
    except KeyboardInterrupt:
        deps.progress.warn("Ctrl-C ignored: the rollback is still running")


def _line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@contextmanager
def shielded(progress: Progress) -> Iterator[None]:
    """While inside, SIGINT only warns (main thread only: signals cannot be set elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def warn(signum: int, frame: object) -> None:
        progress.warn("Ctrl-C ignored: rolling back what this launch created, so nothing is "
                      "left billing; it stops by itself when done")

    previous = signal.signal(signal.SIGINT, warn)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
