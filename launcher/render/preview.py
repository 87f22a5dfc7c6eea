"""``launcher render``'s library call: a stage's document, as it would be sent, secrets masked.

Secrets come from the environment (``VULTR_KEY``, ``B2_KEY_ID``, ``B2_APP_KEY``,
``WANDB_API_KEY``) so the document is measured as it will be sent; an absent one is rendered
empty and shown as ``<unset:NAME>``. Only :meth:`RenderedDocument.redacted_text` leaves here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from launcher.config import StageConfig, load_stage
from launcher.render.pipeline import RenderedDocument, render
from launcher.render.stage import placeholder_facts, stage_run_spec
from launcher.render.zipapp import build_runner_zipapp, zipapp_listing
from launcher.runner.spec import SECRET_NAMES, RunSecrets, RunSpec


@dataclass(frozen=True)
class Preview:
    """A rendered stage. ``document`` holds the real secrets: show ``redacted_text()``."""

    stage: StageConfig
    spec: RunSpec
    document: RenderedDocument
    secrets_set: tuple[str, ...]
    runner_files: tuple[str, ...]

    def as_dict(self, *, with_document: bool = True) -> dict:
        data = {"stage": self.stage.name, "run_id": self.spec.run_id,
                "files": list(self.stage.files),
                "secrets_set": list(self.secrets_set),
                "secrets_unset": [n for n in SECRET_NAMES if n not in self.secrets_set],
                "runner_files": list(self.runner_files),
                "size": self.document.size_report().as_dict()}
        if with_document:
            data["document"] = self.document.redacted_text()
        return data


def secrets_from_env(environ: Mapping[str, str]) -> RunSecrets:
    """The run's secrets from ``environ``; absent ones are empty."""
    return RunSecrets({name: environ.get(name, "") for name in SECRET_NAMES})


def render_stage(config_dir: Path, name: str, environ: Mapping[str, str],
                 now: float | None = None) -> Preview:
    """Load and check the stage, build its spec with placeholders, and render the document."""
    now = time.time() if now is None else now
    stage = load_stage(config_dir, name)
    spec = stage_run_spec(stage, placeholder_facts(stage, now), now)
    secrets = secrets_from_env(environ)
    runner = build_runner_zipapp()
    document = render(spec, secrets, runner)
    return Preview(stage, spec, document,
                   tuple(n for n in SECRET_NAMES if secrets.get(n)),
                   tuple(zipapp_listing(runner)))
