"""``launcher render``'s library call: a stage's document, as it would be sent, secrets masked.

Secrets come from the :class:`~launcher.config.Account` (environment over ``.env``), mapped
to the instance's names by :func:`~launcher.config.run_secrets`, so the document is measured
as it will be sent; an absent one is rendered empty and shown as ``<unset:NAME>``. Only
:meth:`RenderedDocument.redacted_text` leaves here.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

from launcher.config import (
    Account,
    Overrides,
    StageConfig,
    instance_secret_sources,
    resolve_stage,
    run_secrets,
)
from launcher.render.pipeline import BootInputs, RenderedDocument, render
from launcher.render.stage import placeholder_facts, stage_run_spec
from launcher.render.zipapp import build_runner_zipapp, zipapp_listing
from launcher.runner.spec import SECRET_NAMES, RunSpec


@dataclass(frozen=True)
class Preview:
    """A rendered stage. ``document`` holds the real secrets: show ``redacted_text()``."""

    stage: StageConfig
    spec: RunSpec
    document: RenderedDocument
    secrets_set: tuple[str, ...]
    runner_files: tuple[str, ...]
    # The launcher's variables behind the unset secrets (B2_APPLICATION_KEY, not B2_APP_KEY).
    variables_unset: tuple[str, ...] = ()

    def as_dict(self, *, with_document: bool = True) -> dict:
        data = {"stage": self.stage.name, "run_id": self.spec.run_id,
                "files": list(self.stage.files),
                "secrets_set": list(self.secrets_set),
                "secrets_unset": [n for n in SECRET_NAMES if n not in self.secrets_set],
                "variables_unset": list(self.variables_unset),
                "runner_files": list(self.runner_files),
                "size": self.document.size_report().as_dict(),
                # What the instance will execute (run.json: no secrets in it).
                "spec": json.loads(self.spec.to_json())}
        if with_document:
            data["document"] = self.document.redacted_text()
        return data


def render_stage(config_dir: Path, name: str, account: Account,
                 overrides: Overrides | None = None, now: float | None = None) -> Preview:
    """Resolve the stage (files, account, overrides) on its preferred GPU profile, build its
    spec with placeholders, and render the document with the account's secrets."""
    now = time.time() if now is None else now
    stage = resolve_stage(config_dir, name, account, overrides)
    stage = stage.for_profile(stage.gpu)
    facts = dataclasses.replace(placeholder_facts(stage, now),
                                api_url=account.api_url_for_instance,
                                storage_endpoint=account.instance_s3_endpoint,
                                wandb_key=bool(account.wandb_api_key))
    spec = stage_run_spec(stage, facts, now)
    secrets = run_secrets(account)
    runner = build_runner_zipapp()
    document = render(spec, secrets, BootInputs(runner, delete_volume=True))
    sources = instance_secret_sources(account)
    unset = tuple(n for n in SECRET_NAMES if not secrets.get(n))
    return Preview(stage, spec, document,
                   tuple(n for n in SECRET_NAMES if secrets.get(n)),
                   tuple(zipapp_listing(runner)), tuple(sources[n] for n in unset))
