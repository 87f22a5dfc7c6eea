"""The whole configuration as one launch would see it, and as ``launcher config show`` prints it.

:func:`resolve_stage` is the one order of precedence: the stage file over
``configs/launcher.yaml``, then the account's variables (bucket, endpoint, region, W&B
project and entity), then command-line overrides. :func:`config_report` describes that result
with every secret shown as ``***`` and where (under which name) it came from; no key value
ever enters it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from launcher.config.account import (
    ALIASES,
    SOURCE_UNSET,
    VARIABLES,
    Account,
    apply_account,
    instance_secret_sources,
)
from launcher.config.loader import load_stage, stage_names
from launcher.config.model import StageConfig
from launcher.config.overrides import Overrides, apply_overrides
from launcher.errors import ConfigError
from launcher.secrets import REDACTED
from launcher.training.ups import cache_source

PLACEHOLDER_BUCKET = "your-b2-bucket"
CONFIG_DIR_VARIABLE = "LAUNCHER_CONFIG_DIR"


TRAINING_CHECKOUT_DIR = ".launcher"


def config_dir_for(flag: Path | None, environ: Mapping[str, str]) -> Path:
    """``--config-dir``, else ``$LAUNCHER_CONFIG_DIR``, else ``./.launcher`` when it exists
    (the launcher's configs inside a training checkout, whose own ``configs/`` holds its
    training configs), else ``./configs``."""
    if flag or environ.get(CONFIG_DIR_VARIABLE):
        return flag or Path(environ[CONFIG_DIR_VARIABLE])
    checkout = Path(TRAINING_CHECKOUT_DIR)
    return checkout if checkout.is_dir() else Path("configs")


def resolve_stage(config_dir: Path, name: str, account: Account,
                  overrides: Overrides | None = None) -> StageConfig:
    """Stage ``name`` from ``config_dir`` with the account's settings and ``overrides``."""
    stage = apply_account(load_stage(config_dir, name), account)
    return apply_overrides(stage, overrides or Overrides())


def config_report(config_dir: Path, name: str | None, account: Account,
                  overrides: Overrides | None = None) -> dict[str, Any]:
    """What ``config show`` prints: the account (masked), and the resolved stage if named."""
    overrides = overrides or Overrides()
    if name is None and not overrides.is_empty():
        raise ConfigError("override flags apply to a stage: add --stage NAME")
    report: dict[str, Any] = {
        "config_dir": str(config_dir),
        "env_file": dataclasses.asdict(account.env_file),
        "variables": account_variables(account),
        "instance_secrets": instance_secret_sources(account),
        "stages": stage_names(config_dir),
        "notes": []}
    if name is not None:
        stage = resolve_stage(config_dir, name, account, overrides)
        report["stage"] = stage_dict(stage)
        if stage.storage.bucket == PLACEHOLDER_BUCKET:
            report["notes"].append(f"storage.bucket is the placeholder {PLACEHOLDER_BUCKET!r}: "
                                   "set B2_BUCKET or edit configs/launcher.yaml")
    return report


def account_variables(account: Account) -> dict[str, dict[str, Any]]:
    """Each variable's value (``***`` for a set key, None when unset) and its source; for a
    variable with ALIASES also the name it was read under (itself when unset)."""
    shown: dict[str, dict[str, Any]] = {}
    for variable, (attribute, secret) in VARIABLES.items():
        value = getattr(account, attribute)
        source = account.source(variable)
        if secret:
            value = REDACTED if value else None
        elif source == SOURCE_UNSET and variable != "VULTR_API_URL":
            value = None
        shown[variable] = {"value": value, "source": source}
        if variable in ALIASES:
            shown[variable]["name"] = account.name(variable)
    return shown


def stage_dict(stage: StageConfig) -> dict[str, Any]:
    """``stage`` as plain data (env pairs as mappings), for JSON and YAML; the data set,
    the environment and the ups section in the shapes a stage file writes them."""
    data = dataclasses.asdict(stage)
    data["env"] = dict(stage.env)
    for profile, typed in zip(data["profiles"], stage.profiles, strict=True):
        profile["overrides"]["env"] = dict(typed.overrides.env)
    implied = cache_source(stage.ups) if stage.ups else ()  # ups.cache_version's
    sources = [dataclasses.asdict(s) for s in stage.data_sources if s not in implied]
    links = {link.path: link.target for link in stage.data_links}
    del data["data_sources"], data["data_links"]
    if sources:
        data["data"] = {"sources": [{k: v for k, v in s.items() if v} for s in sources],
                        "links": links}
    if stage.ups is not None:
        data["ups"]["overrides"] = {k: json.loads(v) for k, v in stage.ups.overrides}
        data["ups"]["code_links"] = dict(stage.ups.code_links)
    return _lists(data)


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    return value
