"""What a launch talks to, injected: the provider, the bucket, a clock.

``launcher run`` builds the real ones (:func:`real_deps`); tests hand in fast clients, an
emulator-backed provider, a manual clock and a recording :class:`Progress`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from launcher.bucket import Bucket, BucketAddress, ObjectStat
from launcher.config import Account, StorageConfig, run_secrets
from launcher.providers import Provider
from launcher.render.zipapp import build_runner_zipapp

if TYPE_CHECKING:
    from launcher.provision.model import LaunchPlan


class Progress(Protocol):
    """Where a launch says what it is doing (stderr in the CLI). Never handed a secret."""

    def note(self, text: str) -> None: ...

    def warn(self, text: str) -> None: ...

    def waiting(self, text: str) -> AbstractContextManager[None]:
        """Shown for as long as a wait lasts (a spinner in the CLI)."""
        ...


@dataclass
class RecordingProgress:
    """A :class:`Progress` that keeps every line (``"wait: "``/``"warn: "`` prefixed)."""

    lines: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.lines.append(text)

    def warn(self, text: str) -> None:
        self.lines.append(f"warn: {text}")

    @contextmanager
    def waiting(self, text: str) -> Iterator[None]:
        self.lines.append(f"wait: {text}")
        yield

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class BucketLike(Protocol):
    """The part of :class:`launcher.bucket.Bucket` a launch uses."""

    address: BucketAddress

    def put_file(self, local: Path, url: str) -> None: ...

    def stat(self, url: str) -> ObjectStat | None: ...

    def read_json(self, url: str) -> dict: ...

    def presign(self, url: str, expire_s: int) -> str:
        """A read-only URL of the object (a machine without the bucket's tool fetches it)."""
        ...


def address_for(storage: StorageConfig) -> BucketAddress:
    return BucketAddress(storage.endpoint_url, storage.bucket, storage.runs_prefix)


def bucket_factory(account: Account, environ: Mapping[str, str] | None = None
                   ) -> Callable[[StorageConfig], BucketLike]:
    """Buckets for a stage's storage with the account's B2 key (s5cmd underneath)."""

    def make(storage: StorageConfig) -> BucketLike:
        return Bucket(address_for(storage), run_secrets(account), environ)

    return make


@cache
def cached_runner() -> bytes:
    """The runner zipapp, built once per process."""
    return build_runner_zipapp()


@dataclass
class LaunchDeps:
    """A launch's collaborators. Every read (offers, images, reusable volumes, SSH keys),
    create and delete goes through ``provider``. ``confirm(plan)`` is asked before the first
    mutation (the CLI shows the plan and prompts, or ``--yes``). ``now`` is wall time (run
    ids, deadlines); ``monotonic`` and ``sleep`` pace a rollback's retried deletions."""

    account: Account
    provider: Provider
    bucket_for: Callable[[StorageConfig], BucketLike]
    confirm: Callable[[LaunchPlan], bool]
    progress: Progress = field(default_factory=RecordingProgress)
    now: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    runner: Callable[[], bytes] = cached_runner


def real_deps(account: Account, confirm: Callable[[LaunchPlan], bool], progress: Progress,
              provider: Provider, environ: Mapping[str, str] | None = None) -> LaunchDeps:
    """The collaborators ``launcher run`` uses: ``provider`` (the command opens and closes
    it), the bucket through s5cmd."""
    return LaunchDeps(account=account, provider=provider,
                      bucket_for=bucket_factory(account, environ), confirm=confirm,
                      progress=progress)
