"""Load ``configs/launcher.yaml`` and ``configs/stages/<name>.yaml`` into one typed stage.

Each file is checked against its JSON Schema in ``configs/schema/`` (draft 2020-12) before a
value is used. A bad file raises :class:`~launcher.errors.ConfigError` in one line naming the
file, the field's dotted path and what was expected, for example
``configs/stages/x.yaml: field gpu.count: expected integer, got string``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource

from launcher.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_DIR = PROJECT_ROOT / "configs" / "schema"
DEFAULTS_FILE = "launcher.yaml"
STAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,30}$")
JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer",
              float: "number", type(None): "null"}


@dataclass(frozen=True)
class GpuNeed:
    min_vram_gb: int
    count: int
    model: str
    allow_fractional: bool


@dataclass(frozen=True)
class VolumeConfig:
    size_gb: int
    block_type: str
    mount_point: str
    fs_type: str
    keep: bool
    device_wait_s: int


@dataclass(frozen=True)
class StorageConfig:
    endpoint_url: str
    region: str
    bucket: str
    data_prefix: str
    runs_prefix: str


@dataclass(frozen=True)
class WandbConfig:
    project: str
    entity: str
    mode: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class CodeConfig:
    kind: str
    git_url: str = ""
    git_commit: str = ""


@dataclass(frozen=True)
class StageConfig:
    """A stage merged over the defaults: everything a launch needs to know, typed.
    ``files`` names the files it came from, for messages."""

    name: str
    description: str
    command: tuple[str, ...]
    workdir: str
    provider: str
    regions: tuple[str, ...]
    gpu: GpuNeed
    volume: VolumeConfig
    max_hours: float
    max_cost_usd: float | None
    heartbeat_s: int
    snapshot_prefix: str
    storage: StorageConfig
    wandb: WandbConfig
    code: CodeConfig
    cpu_only: bool
    env: tuple[tuple[str, str], ...]
    upload_dirs: tuple[str, ...]
    min_disk_mb_s: float
    matmul: bool
    files: tuple[str, ...]


def stage_names(config_dir: Path) -> list[str]:
    """The stages defined under ``config_dir/stages``."""
    return sorted(p.stem for p in (config_dir / "stages").glob("*.yaml"))


def load_stage(config_dir: Path, name: str) -> StageConfig:
    """Read, check and merge ``launcher.yaml`` and ``stages/<name>.yaml`` from ``config_dir``."""
    if not STAGE_NAME.match(name):
        raise ConfigError(f"--stage: expected a stage name matching {STAGE_NAME.pattern}, "
                          f"got {name!r}")
    defaults_path = config_dir / DEFAULTS_FILE
    stage_path = config_dir / "stages" / f"{name}.yaml"
    if not stage_path.is_file():
        known = ", ".join(stage_names(config_dir)) or "none"
        raise ConfigError(f"{stage_path}: no such stage (known: {known})")
    defaults = load_checked(defaults_path, "launcher.schema.json")
    stage = load_checked(stage_path, "stage.schema.json")
    if stage["name"] != name:
        raise ConfigError(f"{stage_path}: field name: expected {name!r} (the file's name), "
                          f"got {stage['name']!r}")
    return merge(defaults, stage, files=(str(defaults_path), str(stage_path)))


def load_checked(path: Path, schema_name: str) -> dict[str, Any]:
    """The YAML mapping in ``path``, valid against ``configs/schema/<schema_name>``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found", hint="run from the project root or pass "
                          "--config-dir") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "malformed"
        raise ConfigError(f"{path}: not valid YAML: {line}{problem}") from None
    error = best_match(validator(schema_name).iter_errors(data))
    if error is not None:
        raise ConfigError(f"{path}: {describe(error)}")
    return data


def describe(error: ValidationError) -> str:
    """``field <dotted.path>: expected <what>`` for one schema error, on one line."""
    path = [str(p) for p in error.absolute_path]
    what = error.validator
    rule = error.validator_value
    if what == "required":
        missing = next((k for k in rule if k not in error.instance), rule[0])
        return f"field {_dotted(path + [missing])}: missing (required)"
    if what == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(known))
        expected = f"one of {', '.join(known)}" if known else "no such field"
        return f"field {_dotted(path + extra[:1])}: unknown field (expected {expected})"
    got = JSON_TYPES.get(type(error.instance), type(error.instance).__name__)
    if what == "type":
        return f"field {_dotted(path)}: expected {_either(rule)}, got {got}"
    if what == "enum":
        return f"field {_dotted(path)}: expected one of {', '.join(map(str, rule))}"
    if what == "pattern":
        return f"field {_dotted(path)}: expected a string matching {rule}"
    if what in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                "minItems", "maxItems", "minLength", "maxLength"):
        return f"field {_dotted(path)}: expected {what} {rule}"
    message = error.message if len(error.message) < 160 else error.message[:157] + "..."
    return f"field {_dotted(path)}: {message}"


@lru_cache(maxsize=4)
def validator(schema_name: str, schema_dir: Path = SCHEMA_DIR) -> Draft202012Validator:
    """A validator for ``schema_dir/schema_name`` that resolves refs between the schemas."""
    schemas = {p.name: json.loads(p.read_text(encoding="utf-8"))
               for p in sorted(schema_dir.glob("*.schema.json"))}
    registry = Registry().with_resources(
        (s["$id"], Resource.from_contents(s)) for s in schemas.values())
    schema = schemas[schema_name]
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=registry)


def merge(defaults: dict[str, Any], stage: dict[str, Any], *,
          files: tuple[str, ...]) -> StageConfig:
    """The stage over the defaults (both already valid)."""
    gpu = {"min_vram_gb": 40, "count": 1, "model": "", "allow_fractional": False,
           **defaults.get("gpu", {}), **stage.get("gpu", {})}
    volume = {"mount_point": "/mnt/cache", "fs_type": "ext4", "keep": False,
              "device_wait_s": 900, **defaults["volume"], **stage.get("volume", {})}
    storage = {"region": "", "runs_prefix": "runs", **defaults["storage"]}
    storage["data_prefix"] = stage.get("data_prefix", storage["data_prefix"])
    wandb_d, wandb_s = defaults.get("wandb", {}), stage.get("wandb", {})
    wandb = {"project": "", "entity": "", "mode": "online", **wandb_d, **wandb_s,
             "tags": _unique([*wandb_d.get("tags", []), *wandb_s.get("tags", []), stage["name"]])}
    health = defaults.get("health", {})
    return StageConfig(
        name=stage["name"], description=stage.get("description", ""),
        command=tuple(stage["command"]), workdir=stage.get("workdir", "."),
        provider=defaults["provider"], regions=tuple(defaults["regions"]),
        gpu=GpuNeed(**gpu), volume=VolumeConfig(**volume),
        max_hours=float(stage.get("max_hours", defaults["max_hours"])),
        max_cost_usd=_opt_float(stage.get("max_cost_usd", defaults.get("max_cost_usd"))),
        heartbeat_s=int(defaults.get("heartbeat_s", 60)),
        snapshot_prefix=defaults.get("image", {}).get("snapshot_prefix", "launcher-gpu-"),
        storage=StorageConfig(**storage), wandb=WandbConfig(**wandb),
        code=CodeConfig(**stage.get("code", defaults["code"])),
        cpu_only=bool(stage.get("cpu_only", False)),
        env=tuple(sorted(stage.get("env", {}).items())),
        upload_dirs=tuple(stage.get("upload_dirs", ("checkpoints", "reports"))),
        min_disk_mb_s=float(health.get("min_disk_mb_s", 200)),
        matmul=bool(health.get("matmul", True)), files=files)


def _dotted(parts: list[str]) -> str:
    return ".".join(parts) or "(top level)"


def _either(rule: Any) -> str:
    return " or ".join(rule) if isinstance(rule, list) else str(rule)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
