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
from launcher.config.model import GpuProfile, StageConfig
from launcher.config.overrides import Overrides, apply_overrides
from launcher.config.schema import validator
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
        report["stage_files"] = list(stage.files)
        report["command"] = list(stage.command)  # a UPS stage's too, built from its section
        report["launcher_yaml"] = launcher_dict(stage)
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
    """``stage`` as a stage file writes it: stage.schema.json's names and shapes, every value
    the merged one, so that pasted into ``stages/<name>.yaml`` (beside the same
    ``launcher.yaml``) it loads as the same stage. A value at its "not set" default that the
    schema would refuse (an empty git_url, no max_cost_usd) is left out; a UPS stage has its
    ``ups`` section instead of the command built from it."""
    data: dict[str, Any] = {"name": stage.name, "description": stage.description}
    if stage.ups is None:
        data["command"] = stage.command
    data |= {"workdir": stage.workdir, "data_prefix": stage.storage.data_prefix,
             "regions": stage.regions,
             "gpu_profiles": [_profile(p) for p in stage.profiles],
             "max_price_per_hour": stage.max_price_per_hour, "max_hours": stage.max_hours,
             "max_cost_usd": stage.max_cost_usd, "cpu_only": stage.cpu_only,
             "image": dataclasses.asdict(stage.image),
             "volume": _volume(stage, in_stage_file=True), "env": dict(stage.env),
             "upload_dirs": stage.upload_dirs, "wandb": dataclasses.asdict(stage.wandb),
             "code": _set(dataclasses.asdict(stage.code)),
             "cluster": dataclasses.asdict(stage.cluster)}
    if stage.ups is not None:
        ups = dataclasses.asdict(stage.ups)
        ups["overrides"] = {k: json.loads(v) for k, v in stage.ups.overrides}
        ups["code_links"] = dict(stage.ups.code_links)
        data["ups"] = _set(ups)
    implied = cache_source(stage.ups) if stage.ups else ()  # ups.cache_version's
    sources = [{k: v for k, v in dataclasses.asdict(s).items() if v}  # False: the default
               for s in stage.data_sources if s not in implied]
    if sources:
        data["data"] = {"sources": sources,
                        "links": {link.path: link.target for link in stage.data_links}}
    data["python_env"] = {k: v for k, v in dataclasses.asdict(stage.python_env).items()
                          if v is not None}  # None: the cloud's default
    return _lists({k: v for k, v in data.items() if v is not None and v != ""})


def launcher_dict(stage: StageConfig) -> dict[str, Any]:
    """What of ``stage`` only ``launcher.yaml`` (or the account) sets, in its names."""
    data: dict[str, Any] = {"provider": stage.provider, "heartbeat_s": stage.heartbeat_s,
                            "volume": _volume(stage, in_stage_file=False),
                            "storage": _set(dataclasses.asdict(stage.storage)),
                            "health": {"min_disk_mb_s": stage.min_disk_mb_s,
                                       "matmul": stage.matmul}}
    del data["storage"]["data_prefix"]  # a stage file's field: shown with the stage
    if stage.access.ssh_public_key:
        data["access"] = dataclasses.asdict(stage.access)
    return _lists(data)


def _volume(stage: StageConfig, *, in_stage_file: bool) -> dict[str, Any]:
    """The volume's fields a stage file may set (``in_stage_file``), or the others."""
    allowed = validator("stage.schema.json").schema["properties"]["volume"]["properties"]
    return {k: v for k, v in dataclasses.asdict(stage.volume).items()
            if (k in allowed) == in_stage_file}


def _profile(profile: GpuProfile) -> dict[str, Any]:
    """One GPU profile as ``gpu_profiles`` writes it (max_gpu_count 0 means unset)."""
    data = _set(dataclasses.asdict(profile))
    overrides = {"args": list(profile.overrides.args), "env": dict(profile.overrides.env)}
    data["overrides"] = {k: v for k, v in overrides.items() if v}
    return {k: v for k, v in data.items() if v not in (0, {}) or isinstance(v, bool)}


def _set(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` without the ones at an empty default ("", [], (), None)."""
    return {k: v for k, v in fields.items() if v is not None and v not in ("", [], ())}


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    return value
