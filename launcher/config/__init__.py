"""The launcher's configuration: files, account, overrides, merged into one typed stage.

- :mod:`~launcher.config.loader`: ``configs/launcher.yaml`` + ``configs/stages/<name>.yaml``,
  checked against ``configs/schema/`` -> :class:`StageConfig` (:func:`load_stage`).
- :mod:`~launcher.config.account`: keys and account settings from the environment over a
  ``.env`` file -> :class:`Account` (:func:`load_account`, :func:`run_secrets`).
- :mod:`~launcher.config.overrides`: command-line flags -> :class:`Overrides`
  (:func:`add_override_flags`, :func:`apply_overrides`).
- :mod:`~launcher.config.view`: :func:`resolve_stage` (files, then account, then overrides)
  and :func:`config_report` (``launcher config show``).

Every error is a one-line :class:`~launcher.errors.ConfigError` naming the file (or flag, or
variable), the field and what was expected.
"""

from launcher.config.account import (
    DEFAULT_ENV_FILE,
    ENV_FILE_VARIABLE,
    Account,
    Credentials,
    EnvFile,
    apply_account,
    instance_secret_sources,
    load_account,
    run_secrets,
    vast_settings,
    vultr_settings,
)
from launcher.config.dotenv import parse_dotenv, read_env_file
from launcher.config.loader import (
    DEFAULTS_FILE,
    STAGE_NAME,
    configured_provider,
    load_checked,
    load_stage,
    merge,
    stage_names,
)
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
from launcher.config.overrides import (
    Overrides,
    add_override_flags,
    apply_overrides,
    overrides_from_args,
)
from launcher.config.schema import SCHEMA_DIR, describe, validator
from launcher.config.view import (
    CONFIG_DIR_VARIABLE,
    config_dir_for,
    config_report,
    resolve_stage,
)

__all__ = [
    "CONFIG_DIR_VARIABLE", "DEFAULTS_FILE", "DEFAULT_ENV_FILE", "ENV_FILE_VARIABLE",
    "SCHEMA_DIR", "STAGE_NAME", "AccessConfig", "Account", "CodeConfig",
    "Credentials", "EnvFile", "GpuProfile", "ImageConfig", "Overrides",
    "ProfileOverrides", "StageConfig", "StorageConfig", "VastConfig", "VolumeConfig", "WandbConfig",
    "add_override_flags", "apply_account", "apply_overrides", "config_dir_for", "config_report",
    "configured_provider", "describe", "instance_secret_sources", "load_account",
    "load_checked", "load_stage", "merge",
    "overrides_from_args", "parse_dotenv", "read_env_file", "resolve_stage", "run_secrets",
    "stage_names", "validator", "vast_settings", "vultr_settings",
]
