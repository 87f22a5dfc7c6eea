"""What every phase receives: the spec, the secrets, the reporter, and injectable time.

Phase contracts (each module documents its own; the supervisor calls them in this order):

- ``volume.prepare(ctx) -> VolumeResult``   wait for the device, mkfs only if blank, mount.
- ``code.fetch(ctx) -> Path``               the code directory, ready to run in.
- ``pyenv.prepare(ctx, code_dir) -> PythonEnvResult | None``  the code's own venv (sets
  ``ctx.python_env``; None when the spec installs nothing).
- ``data.sync(ctx) -> Manifest``            dataset in ``<mount>/data``, counted and checked.
- ``health.check(ctx, manifest) -> HealthReport``   GPU, CUDA matmul, disk speed, data.
- ``cluster.join(ctx) -> ClusterInfo``      an N-node run only: private NIC, readiness
  barrier (sets ``ctx.cluster``).
- ``train.run(ctx, code_dir, heartbeat) -> int``    the stage's exit status.
- ``upload.upload(ctx, outcome) -> UploadResult``   outputs + logs + manifest, verified.
- ``teardown.teardown(ctx, upload_verified) -> list[str]``  what was left behind.

A phase raises :class:`~launcher.runner.status.PhaseFailed` with a one-line reason when it
cannot do its job; anything else it raises is a bug, and is treated the same way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.runner.spec import RunSecrets, RunSpec
from launcher.runner.status import Reporter


@dataclass
class Context:
    spec: RunSpec
    secrets: RunSecrets
    reporter: Reporter
    # The environment external tools run with (PATH etc.); tests put fake tools first on PATH.
    base_env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    # The env phase's PythonEnvResult (``.path``, ``.python``) once made; None: the image's.
    python_env: Any = None
    # The cluster phase's ClusterInfo (an N-node run only); None: one machine.
    cluster: Any = None

    @property
    def mount(self) -> Path:
        return Path(self.spec.volume.mount_point)

    def log(self, message: str) -> None:
        self.reporter.log(message)

    def seconds_left(self) -> float:
        """Until the run's deadline (wall clock, UTC epoch)."""
        return self.spec.deadline_epoch - self.wall()
