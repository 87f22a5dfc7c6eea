"""CLI commands: each module has ``register(subparsers)`` and a handler returning an exit code.

:data:`SUMMARIES` is the one list of commands, in ``--help`` order, with their one-line help:
the command line imports a command's module only when that command runs (or for
``launcher CMD --help``), so ``launcher --help`` loads none of them.
"""

from __future__ import annotations

import importlib
from types import ModuleType

SUMMARIES: dict[str, str] = {
    "init": "write a starter .launcher/ (defaults and stages) into a training checkout",
    "offers": "GPU plans × regions that fit, in the order run would try them",
    "demo": "launch the example stage on an emulated Vultr, end to end, offline",
    "emulator": "serve an emulated Vultr API on 127.0.0.1",
    "render": "print a stage's cloud-init document, secrets masked",
    "config": "show the configuration a launch would use, secrets masked",
    "status": "every run (or one, in detail) from Vultr's tags and the bucket",
    "logs": "print a run's log from the bucket (--follow keeps printing) or, with "
            "--machine, the machine's own output",
    "ssh": "open a shell on a run's instance, its host key pinned from the bucket",
    "teardown": "delete a run's instance and (when its upload is verified) volume",
    "gc": "list (and with --yes delete) instances and volumes of ended runs",
    "doctor": "check keys, permissions, bucket, snapshot, GPU stock and s5cmd",
    "images": "baked snapshots, newest first, and the one `image: latest` boots",
    "report": "write reports/vultr_vs_vast.md: runs per cloud and live offers, from records",
    "run": "launch a stage: plan, confirm, create only what is missing",
}


def load(name: str) -> ModuleType:
    """The module of command ``name`` (a key of :data:`SUMMARIES`)."""
    return importlib.import_module(f"launcher.commands.{name}")
