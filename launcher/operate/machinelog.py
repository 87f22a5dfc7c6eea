"""``launcher logs RUN --machine``: the machine's own output, as the cloud keeps it.

A run writes nothing to the bucket until its runner's first heartbeat; when the machine
fails before that, the bucket stays empty. A cloud with ``Capabilities.machine_logs``
(Vast.ai: the container's log, through ``request_logs``) still holds what the machine wrote
to its output; this module asks it for the run's one instance. The text is the cloud's and
the machine's: callers print it inert.

There is no following here: each read asks the cloud to produce the log anew (Vast uploads
it to a fresh URL per request), so ``--machine`` reads once and ``--follow`` stays the
bucket's.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from launcher.errors import LauncherError, NotFoundError
from launcher.operate.runlogs import UPLOADS_ONCE_TRAINING
from launcher.providers import Capabilities, InstanceRef, Provider

OpenProvider = Callable[[], AbstractContextManager[Provider]]


class MachineLogRefused(LauncherError):
    """No machine log is asked for; the message says why and the hint what works instead."""


@dataclass(frozen=True)
class MachineLog:
    """The text the cloud handed over for ``instance_id`` (possibly empty)."""

    run_id: str
    instance_id: str
    text: str


def bucket_logs(run_id: str) -> str:
    return f"`launcher logs {run_id}` (and `--runner`) prints the run's logs from the bucket"


def machine_hint(run_id: str) -> str:
    return f"`launcher logs {run_id} --machine` prints the machine's own output"


def refuse_without_machine_logs(provider: Provider, run_id: str) -> None:
    """MachineLogRefused when the cloud hands over no machine output at all."""
    if not provider.capabilities.machine_logs:
        raise MachineLogRefused(
            f"{provider.title}'s API hands over no log of a machine's own output, so "
            "--machine has nothing to read", hint=bucket_logs(run_id))


def run_instance(provider: Provider, run_id: str) -> InstanceRef:
    """The run's one instance (any state: a machine that failed to start still has a log)."""
    instances = provider.find_run(run_id).instances
    if not instances:
        raise MachineLogRefused(
            f"run {run_id} has no instance: it has ended (or was never launched), and the "
            f"machine's own log went with it", hint=f"its logs are in the bucket: "
            f"{bucket_logs(run_id)}; `launcher status {run_id}` shows how it ended")
    if len(instances) > 1:
        ids = ", ".join(i.id for i in instances)
        raise MachineLogRefused(
            f"run {run_id} has {len(instances)} instances ({ids}); --machine reads one "
            f"machine, and only an N-node run (on Vultr, whose API has no machine log) has "
            "several", hint=f"`launcher status {run_id}` lists them; "
            f"`launcher teardown {run_id}` removes them")
    return instances[0]


def read_machine_log(provider: Provider, run_id: str, tail: int | None = None) -> MachineLog:
    """The container's (machine's) log of the run's instance, its last ``tail`` lines when
    given. MachineLogRefused when the cloud has none, the run has no instance or several,
    or the instance went away meanwhile; an API failure raises as it came."""
    refuse_without_machine_logs(provider, run_id)
    instance = run_instance(provider, run_id)
    try:
        text = provider.machine_log(instance.id, tail)
    except NotFoundError:
        raise MachineLogRefused(
            f"run {run_id}'s instance {instance.id} is gone (it was destroyed while its "
            "log was asked for), and its log with it",
            hint=f"its logs are in the bucket: {bucket_logs(run_id)}") from None
    return MachineLog(run_id, instance.id, text)


def missing_log_hint(open_provider: OpenProvider, run_id: str) -> str | None:
    """The hint for a log not in the bucket when ``--machine`` has something to read (the
    cloud keeps machine logs and the run has one instance), else None. Opening the provider
    or reading it may fail: that only means no such hint."""
    try:
        with open_provider() as provider:
            if not provider.capabilities.machine_logs:
                return None
            if len(provider.find_run(run_id).instances) != 1:
                return None
    except LauncherError:
        return None
    return (f"{UPLOADS_ONCE_TRAINING}; until then, or when the machine failed to start, "
            f"{machine_hint(run_id)}")


def follow_aside(capabilities: Capabilities, run_id: str) -> str:
    """What ``logs -f`` adds once to its waiting line when the cloud keeps machine logs
    (the instance may not exist yet, so it is not looked for); "" otherwise."""
    return f"if the machine failed to start, {machine_hint(run_id)}" \
        if capabilities.machine_logs else ""
