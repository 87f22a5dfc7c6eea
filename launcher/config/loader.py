"""Load ``configs/launcher.yaml`` and ``configs/stages/<name>.yaml`` into one typed stage.

Each file is checked against its JSON Schema in ``configs/schema/`` (draft 2020-12) before a
value is used. A bad file raises :class:`~launcher.errors.ConfigError` in one line naming the
file, the field's dotted path and what was expected, for example
``configs/stages/x.yaml: field gpu_profiles.0.gpu_count: expected integer, got string``.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from launcher.config.cluster import check_cluster, cluster_source, read_cluster
from launcher.config.model import (
    AccessConfig,
    CodeConfig,
    GpuProfile,
    ImageConfig,
    ProfileOverrides,
    StageConfig,
    StorageConfig,
    VastConfig,
    VolumeConfig,
    WandbConfig,
)
from launcher.config.overrides import Overrides, apply_overrides
from launcher.config.schema import describe, first_error
from launcher.errors import ConfigError
from launcher.localfiles import read_text
from launcher.runner.spec import DataLink, DataSource, PythonEnv
from launcher.sshkeys import MAX_KEY_FILE_BYTES
from launcher.training.ups import (
    DEFAULT_CODE_LINKS,
    UPS_STAGES,
    UpsConfig,
    cache_source,
    static_command,
)

DEFAULTS_FILE = "launcher.yaml"
MAX_CONFIG_BYTES = 1024 * 1024
MAX_CONFIG_NODES = 100_000  # values after aliases are expanded; real files hold hundreds
MAX_CONFIG_DEPTH = 50
STAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,30}$")
PUBLIC_KEY_TYPES = ("ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-")


def stage_names(config_dir: Path) -> list[str]:
    """The stages defined under ``config_dir/stages``."""
    return sorted(p.stem for p in (config_dir / "stages").glob("*.yaml"))


INIT_HINT = ("in the training checkout, `launcher init` writes the starter configs to "
             ".launcher/; or pass --config-dir")


def load_stage(config_dir: Path, name: str, *,
               command_override: Sequence[str] | None = None) -> StageConfig:
    """Read, check and merge ``launcher.yaml`` and ``stages/<name>.yaml`` from ``config_dir``.
    ``command_override`` replaces the stage's argv (as ``--command`` does)."""
    if not STAGE_NAME.match(name):
        raise ConfigError(f"--stage: expected a stage name matching {STAGE_NAME.pattern}, "
                          f"got {name!r}")
    defaults_path = config_dir / DEFAULTS_FILE
    stage_path = config_dir / "stages" / f"{name}.yaml"
    if not config_dir.is_dir():
        raise ConfigError(f"{config_dir}: no configuration folder here", hint=INIT_HINT)
    if not stage_path.exists():
        known = ", ".join(stage_names(config_dir)) or "none"
        raise ConfigError(f"{stage_path}: no such stage (known: {known})")
    defaults = load_checked(defaults_path, "launcher.schema.json")
    stage = load_checked(stage_path, "stage.schema.json")
    if stage["name"] != name:
        raise ConfigError(f"{stage_path}: field name: expected {name!r} (the file's name), "
                          f"got {stage['name']!r}")
    merged = merge(defaults, stage, files=(str(defaults_path), str(stage_path)))
    if command_override is None:
        return merged
    return apply_overrides(merged, Overrides(command=tuple(command_override)))


def configured_provider(config_dir: Path) -> str | None:
    """``provider:`` of ``config_dir``'s launcher.yaml (checked); None without that file."""
    path = config_dir / DEFAULTS_FILE
    if not path.is_file():
        return None
    return str(load_checked(path, "launcher.schema.json")["provider"])


def load_checked(path: Path, schema_name: str) -> dict[str, Any]:
    """The YAML mapping in ``path``, valid against ``configs/schema/<schema_name>``."""
    if not path.exists():
        raise ConfigError(f"{path}: not found", hint=INIT_HINT)
    text = read_text(path, expected="a YAML configuration file", limit=MAX_CONFIG_BYTES)
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{path}: nested deeper than YAML can be read") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "malformed"
        raise ConfigError(f"{path}: not valid YAML: {line}{problem}") from None
    check_expanded_size(data, path)
    error = first_error(schema_name, data)
    if error is not None:
        raise ConfigError(f"{path}: {describe(error)}")
    return data


def check_expanded_size(data: Any, path: Path) -> None:
    """Refuse a document whose aliases expand it past MAX_CONFIG_NODES values ("billion
    laughs"), that refers to itself, or that nests deeper than MAX_CONFIG_DEPTH: PyYAML
    shares an aliased value, but validating and merging walk every copy. Counted once per
    distinct value, so the count itself stays linear."""
    sizes: dict[int, int] = {}
    open_now: set[int] = set()

    def size(value: Any, depth: int) -> int:
        key = id(value)
        if key in open_now:
            raise ConfigError(f"{path}: an alias refers to a value that holds it")
        if depth > MAX_CONFIG_DEPTH:
            raise ConfigError(f"{path}: nested deeper than {MAX_CONFIG_DEPTH} levels")
        if key not in sizes:
            children = (value.values() if isinstance(value, dict) else value
                        if isinstance(value, list) else ())
            open_now.add(key)
            total = 1 + sum(size(child, depth + 1) for child in children)
            open_now.discard(key)
            sizes[key] = min(total, MAX_CONFIG_NODES + 1)
        return sizes[key]

    if size(data, 0) > MAX_CONFIG_NODES:
        raise ConfigError(f"{path}: its aliases expand to more than {MAX_CONFIG_NODES:,} "
                          "values; write the values out, or use fewer nested aliases")


def merge(defaults: dict[str, Any], stage: dict[str, Any], *,
          files: tuple[str, ...]) -> StageConfig:
    """The stage over the defaults (both already valid)."""
    defaults_file, stage_file = files
    profiles_from = stage_file if "gpu_profiles" in stage else defaults_file
    health = defaults.get("health", {})
    volume = _volume(defaults, stage)
    merged = StageConfig(
        name=stage["name"], description=stage.get("description", ""),
        workdir=stage.get("workdir", "."),
        **_training(defaults, stage, volume.mount_point, stage_file),
        provider=defaults["provider"],
        regions=tuple(stage.get("regions", defaults["regions"])),
        profiles=profiles(stage.get("gpu_profiles", defaults["gpu_profiles"]), profiles_from),
        volume=volume,
        max_hours=float(stage.get("max_hours", defaults["max_hours"])),
        max_cost_usd=_opt_float(_pick("max_cost_usd", stage, defaults)),
        max_price_per_hour=_opt_float(_pick("max_price_per_hour", stage, defaults)),
        heartbeat_s=int(defaults.get("heartbeat_s", 60)),
        image=ImageConfig(**{**defaults.get("image", {}), **stage.get("image", {})}),
        vast=_vast(defaults, stage),
        storage=_storage(defaults, stage), wandb=_wandb(defaults, stage),
        code=CodeConfig(**stage.get("code", defaults["code"])),
        cpu_only=bool(stage.get("cpu_only", False)),
        env=tuple(sorted(stage.get("env", {}).items())),
        upload_dirs=tuple(stage.get("upload_dirs", ("checkpoints", "reports"))),
        min_disk_mb_s=float(health.get("min_disk_mb_s", 200)),
        matmul=bool(health.get("matmul", True)),
        access=_access(defaults.get("access", {}), defaults_file),
        cluster=read_cluster(defaults, stage), files=files)
    where = cluster_source(defaults, stage, files)
    check_cluster(merged, f"{where}: field cluster.nodes")
    return merged


def _training(defaults: dict[str, Any], stage: dict[str, Any], mount_point: str,
              stage_file: str) -> dict[str, Any]:
    """The command, the data sources and links, the environment and the UPS settings: a
    stage's own, else (for a stage with ``ups``) ``launcher.yaml``'s ``ups`` section's."""
    if ("command" in stage) == ("ups" in stage):
        what = "command and ups: a stage has one or the other" if "ups" in stage else \
            "command: missing (required unless the stage has an ups section)"
        raise ConfigError(f"{stage_file}: field {what}")
    shared = {}
    ups = None
    if "ups" in stage:
        shared = {**defaults.get("ups", {}), **stage["ups"]}
        if "train_config" not in shared:
            raise ConfigError(f"{stage_file}: field ups.train_config: expected the training "
                              "config's path (here or in launcher.yaml's ups section)")
        ups = UpsConfig(
            train_config=shared["train_config"],
            train=tuple(shared.get("train", UPS_STAGES)),
            data_root=shared.get("data_root", "pdebench"),
            evaluate=bool(shared.get("evaluate", False)), python=shared.get("python", "python"),
            overrides=tuple((k, json.dumps(v)) for k, v in shared.get("overrides", {}).items()),
            code_links=tuple(shared.get("code_links", dict(DEFAULT_CODE_LINKS)).items()),
            cache_version=shared.get("cache_version", ""),
            cache_include=tuple(shared.get("cache_include", ())))
    data = stage["data"] if "data" in stage else shared.get("data", {})
    env = stage["python_env"] if "python_env" in stage else shared.get("python_env", {})
    sources = tuple(DataSource(prefix=s["prefix"], dest=s.get("dest", "").strip("/"),
                               bucket=s.get("bucket", ""), include=tuple(s.get("include", ())),
                               writable=bool(s.get("writable", False)))
                    for s in data.get("sources", ()))
    sources += cache_source(ups) if ups else ()
    links = tuple(DataLink(path, target) for path, target in data.get("links", {}).items())
    check_data(sources, links, stage_file if "data" in stage else "the ups section's data")
    return {"command": static_command(ups, mount_point) if ups else tuple(stage["command"]),
            "ups": ups, "data_sources": sources, "data_links": links,
            "python_env": PythonEnv(**{k: tuple(v) if isinstance(v, list) else v
                                       for k, v in env.items()})}


def check_data(sources: tuple[DataSource, ...], links: tuple[DataLink, ...],
               where: str) -> None:
    """What the data phase would refuse, refused before a launch: sources whose folders
    nest, links to files no source can bring (outside every source, or not matched by its
    ``include``)."""
    dests = [s.dest for s in sources]
    for index, source in enumerate(sources):
        if source.writable and not source.dest:
            raise ConfigError(f"{where}: field data.sources.{index}.writable: expected a "
                              "source with a dest of its own")
    for index, dest in enumerate(dests):
        for other in dests[:index]:
            if not dest or not other or f"{dest}/".startswith(f"{other}/") \
                    or f"{other}/".startswith(f"{dest}/"):
                raise ConfigError(f"{where}: field data.sources.{index}.dest: expected a "
                                  f"folder of its own, got {dest!r} beside {other!r}")
    for link in links:
        if not any(_brings(source, link.target) for source in sources):
            raise ConfigError(f"{where}: field data.links.{link.path}: expected a file one of "
                              f"the sources brings, got {link.target!r}")


def _brings(source: DataSource, path: str) -> bool:
    rel = path[len(source.dest) + 1:] if source.dest else path
    if source.dest and not path.startswith(f"{source.dest}/"):
        return False
    return not source.include or any(fnmatch.fnmatchcase(rel, p) for p in source.include)


def profiles(items: list[dict[str, Any]], file: str) -> tuple[GpuProfile, ...]:
    """Typed profiles in their order; unnamed ones are ``preferred`` / ``fallback-<n>``."""
    result = []
    for index, item in enumerate(items):
        overrides = item.get("overrides", {})
        result.append(GpuProfile(
            min_vram_gb=int(item["min_vram_gb"]), gpu_count=int(item.get("gpu_count", 1)),
            max_gpu_count=int(item.get("max_gpu_count", 0)),
            gpu_model=item.get("gpu_model", ""),
            allow_fractional=bool(item.get("allow_fractional", False)),
            name=item.get("name") or ("preferred" if index == 0 else f"fallback-{index}"),
            overrides=ProfileOverrides(args=tuple(overrides.get("args", ())),
                                       env=tuple(sorted(overrides.get("env", {}).items())))))
    for index, profile in enumerate(result):
        if profile.max_gpu_count and profile.max_gpu_count < profile.gpu_count:
            raise ConfigError(f"{file}: field gpu_profiles.{index}.max_gpu_count: expected at "
                              f"least gpu_count ({profile.gpu_count}), got "
                              f"{profile.max_gpu_count}")
    names = [p.name for p in result]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise ConfigError(f"{file}: field gpu_profiles.{index}.name: expected a name no "
                              f"other profile has, got {name!r} again")
    return tuple(result)


def _volume(defaults: dict[str, Any], stage: dict[str, Any]) -> VolumeConfig:
    volume = {"mount_point": "/mnt/cache", "fs_type": "ext4", "keep": False,
              "device_wait_s": 900, "reuse_label": "",
              **defaults["volume"], **stage.get("volume", {})}
    volume["keep"] = bool(volume["keep"] or volume["reuse_label"])
    return VolumeConfig(**volume)


def _storage(defaults: dict[str, Any], stage: dict[str, Any]) -> StorageConfig:
    storage = {"region": "", "runs_prefix": "runs", **defaults["storage"]}
    storage["data_prefix"] = stage.get("data_prefix", storage["data_prefix"])
    return StorageConfig(**storage)


def _wandb(defaults: dict[str, Any], stage: dict[str, Any]) -> WandbConfig:
    wandb_d, wandb_s = defaults.get("wandb", {}), stage.get("wandb", {})
    tags = [*wandb_d.get("tags", []), *wandb_s.get("tags", []), stage["name"]]
    return WandbConfig(**{"project": "", "entity": "", "mode": "online", **wandb_d, **wandb_s,
                          "tags": tuple(dict.fromkeys(tags))})


def _vast(defaults: dict[str, Any], stage: dict[str, Any]) -> VastConfig:
    merged = {**defaults.get("vast", {}), **stage.get("vast", {})}
    for name in ("regions", "apt_packages"):
        if name in merged:
            merged[name] = tuple(merged[name])
    return VastConfig(**merged)


def _access(access: dict[str, Any], file: str) -> AccessConfig:
    raw = access.get("ssh_public_key")
    if not raw:
        return AccessConfig()
    path = Path(raw).expanduser()
    where = f"{file}: field access.ssh_public_key"
    try:
        first = read_text(path, expected="an OpenSSH public key file",
                          limit=MAX_KEY_FILE_BYTES).lstrip()[:64]
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.message}") from None
    if first.startswith("-----BEGIN") or not first.startswith(PUBLIC_KEY_TYPES):
        raise ConfigError(f"{where}: {path}: expected an OpenSSH public key (ssh-ed25519 ... "
                          "or ssh-rsa ...), not a private key or other file")
    return AccessConfig(ssh_public_key=str(path))


def _pick(key: str, stage: dict[str, Any], defaults: dict[str, Any]) -> Any:
    return stage.get(key, defaults.get(key))


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
