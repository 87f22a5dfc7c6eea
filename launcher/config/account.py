"""The account: credentials and account settings from the environment and a ``.env`` file.

An environment variable wins over the ``.env`` file; an empty value counts as unset. The file
is ``--env-file PATH``, else ``$LAUNCHER_ENV_FILE``, else ``./.env``; only the last may be
missing. A variable with an alias (:data:`ALIASES`: the training repository's names for the
B2 key) may be set under either name, not under both to different values. Keys are held as
:class:`~launcher.secrets.Secret` (``repr`` shows ``***``) and leave here only through
:func:`run_secrets` (for the instance's root-only secrets file) and :func:`vultr_settings`
(for the API layer).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from launcher.config.dotenv import read_env_file
from launcher.config.model import StageConfig
from launcher.config.schema import check_value
from launcher.errors import ConfigError
from launcher.runner.spec import RunSecrets
from launcher.secrets import Secret
from launcher.vast.config import DEFAULT_API_URL as VAST_DEFAULT_API_URL
from launcher.vast.config import VastSettings
from launcher.vultr.config import VultrSettings, timeouts_from_env, validate_api_url

ENV_FILE_VARIABLE = "LAUNCHER_ENV_FILE"
DEFAULT_ENV_FILE = ".env"
DEFAULT_API_URL = "https://api.vultr.com/v2"
SOURCE_ENV, SOURCE_FILE, SOURCE_UNSET = "env", ".env file", "unset"
# The launcher's variables -> (Account field, is it a secret?)
VARIABLES: dict[str, tuple[str, bool]] = {
    "VULTR_KEY": ("vultr_key", True),
    "VULTR_API_URL": ("vultr_api_url", False),
    "VULTR_SELF_DESTRUCT_KEY": ("vultr_self_destruct_key", True),
    "B2_APPLICATION_KEY_ID": ("b2_key_id", True),
    "B2_APPLICATION_KEY": ("b2_key", True),
    "B2_BUCKET": ("b2_bucket", False),
    "B2_S3_ENDPOINT": ("b2_s3_endpoint", False),
    "B2_S3_REGION": ("b2_s3_region", False),
    "WANDB_API_KEY": ("wandb_api_key", True),
    "WANDB_PROJECT": ("wandb_project", False),
    "WANDB_ENTITY": ("wandb_entity", False),
    "VAST_API_KEY": ("vast_api_key", True),
    "VAST_API_URL": ("vast_api_url", False),
    "LAUNCHER_INSTANCE_API_URL": ("instance_api_url", False),
    "LAUNCHER_INSTANCE_S3_ENDPOINT": ("instance_s3_endpoint", False),
}
# Other names a variable is read under, the same meaning (the training repository's .env).
ALIASES: dict[str, tuple[str, ...]] = {"B2_APPLICATION_KEY_ID": ("B2_KEY_ID",),
                                       "B2_APPLICATION_KEY": ("B2_APP_KEY",)}
BARE_HOST = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+")
B2_ENDPOINT = re.compile(r"^https://s3\.([a-z0-9-]+)\.backblazeb2\.com/?$")
S3_REGION = re.compile(r"[a-z0-9-]{1,63}")
UNSET = Secret("")


@dataclass(frozen=True)
class EnvFile:
    """The ``.env`` file consulted: its path, who named it (``--env-file``,
    ``LAUNCHER_ENV_FILE`` or ``default``) and whether it exists."""

    path: str = DEFAULT_ENV_FILE
    named_by: str = "default"
    found: bool = False


@dataclass(frozen=True)
class Account:
    """Credentials and account settings; ``sources`` says where each variable came from
    (``env``, ``.env file`` or ``unset``), ``names`` which alias supplied a variable read
    under one (see :meth:`name`)."""

    vultr_key: Secret = UNSET
    vultr_api_url: str = DEFAULT_API_URL
    vultr_self_destruct_key: Secret = UNSET
    b2_key_id: Secret = UNSET
    b2_key: Secret = UNSET
    b2_bucket: str = ""
    b2_s3_endpoint: str = ""
    b2_s3_region: str = ""
    wandb_api_key: Secret = UNSET
    wandb_project: str = ""
    wandb_entity: str = ""
    instance_api_url: str = ""
    instance_s3_endpoint: str = ""
    vast_api_key: Secret = UNSET
    vast_api_url: str = VAST_DEFAULT_API_URL
    sources: tuple[tuple[str, str], ...] = ()
    env_file: EnvFile = field(default_factory=EnvFile)
    names: tuple[tuple[str, str], ...] = ()

    def source(self, variable: str) -> str:
        return dict(self.sources).get(variable, SOURCE_UNSET)

    def name(self, variable: str) -> str:
        """The name ``variable``'s value was read under: one of its ALIASES, or itself."""
        return dict(self.names).get(variable, variable)

    @property
    def api_url_for_instance(self) -> str:
        """The Vultr API URL the instance's runner uses: ``LAUNCHER_INSTANCE_API_URL``, else
        the launcher's own ``VULTR_API_URL``."""
        return self.instance_api_url or self.vultr_api_url

    @property
    def instance_vultr_key(self) -> Secret:
        """The key the instance deletes itself with: the reduced self-destruct key if set."""
        return self.vultr_self_destruct_key or self.vultr_key

    def secrets(self) -> tuple[Secret, ...]:
        """Every key that is set, for scrubbing text."""
        values = (getattr(self, f) for f, secret in VARIABLES.values() if secret)
        return tuple(v for v in values if v)


Credentials = Account  # the other name the design uses


def instance_secret_sources(account: Account) -> dict[str, str]:
    """Which variable (under the name that supplied it) feeds each name in the instance's
    secrets file."""
    vultr = "VULTR_SELF_DESTRUCT_KEY" if account.vultr_self_destruct_key else "VULTR_KEY"
    return {"VULTR_KEY": vultr, "B2_KEY_ID": account.name("B2_APPLICATION_KEY_ID"),
            "B2_APP_KEY": account.name("B2_APPLICATION_KEY"), "WANDB_API_KEY": "WANDB_API_KEY"}


def run_secrets(account: Account) -> RunSecrets:
    """The instance's secrets (its own names: VULTR_KEY, B2_KEY_ID, B2_APP_KEY,
    WANDB_API_KEY); unset ones are empty."""
    return RunSecrets({
        "VULTR_KEY": account.instance_vultr_key.reveal(),
        "B2_KEY_ID": account.b2_key_id.reveal(), "B2_APP_KEY": account.b2_key.reveal(),
        "WANDB_API_KEY": account.wandb_api_key.reveal()})


def env_file_for(flag: str | Path | None, environ: Mapping[str, str]) -> EnvFile:
    """The ``.env`` file to read: ``flag``, else ``$LAUNCHER_ENV_FILE``, else ``./.env``."""
    if flag:
        return EnvFile(str(flag), "--env-file")
    if environ.get(ENV_FILE_VARIABLE, "").strip():
        return EnvFile(environ[ENV_FILE_VARIABLE].strip(), ENV_FILE_VARIABLE)
    return EnvFile()


def load_account(environ: Mapping[str, str] | None = None,
                 env_file: str | Path | None = None) -> Account:
    """The account from ``environ`` (default ``os.environ``) over the ``.env`` file.
    A named ``.env`` file that does not exist is a ConfigError, as are a variable and its
    alias set to different values; the default ``.env`` file may be missing."""
    env = os.environ if environ is None else environ
    chosen = env_file_for(env_file, env)
    from_file = read_env_file(Path(chosen.path))
    if from_file is None and chosen.named_by != "default":
        raise ConfigError(f"{chosen.named_by} {chosen.path}: no such file")
    chosen = dataclasses.replace(chosen, found=from_file is not None)
    values: dict[str, object] = {}
    sources: list[tuple[str, str]] = []
    names: list[tuple[str, str]] = []
    for variable, (attribute, secret) in VARIABLES.items():
        value, name, source = _lookup(variable, env, from_file or {}, chosen)
        sources.append((variable, source))
        if name != variable:
            names.append((variable, name))
        if value and secret:
            check_key_text(value, named(name, source, chosen))
        if value:
            values[attribute] = Secret(value) if secret else value
    for variable, attribute in (("VULTR_API_URL", "vultr_api_url"),
                                ("VAST_API_URL", "vast_api_url")):
        if attribute in values:
            where = named(variable, dict(sources)[variable], chosen)
            values[attribute] = validate_api_url(str(values[attribute]), where)
    for variable, attribute in (("LAUNCHER_INSTANCE_API_URL", "instance_api_url"),
                                ("LAUNCHER_INSTANCE_S3_ENDPOINT", "instance_s3_endpoint")):
        if attribute in values:
            where = named(variable, dict(sources)[variable], chosen)
            values[attribute] = validate_instance_url(str(values[attribute]), where)
    return Account(**values, sources=tuple(sources), env_file=chosen,  # type: ignore[arg-type]
                   names=tuple(names))


def check_key_text(value: str, where: str) -> None:
    """A key travels in an HTTP header and an environment file: printable ASCII without
    spaces. ConfigError naming ``where`` and the offending position, never the key."""
    for position, char in enumerate(value, 1):
        if not ("!" <= char <= "~"):
            raise ConfigError(f"{where}: character {position} of the key is not printable "
                              "ASCII (a space, a control or a non-ASCII character): copy the "
                              "key again from its console")


def validate_instance_url(url: str, where: str) -> str:
    """``url`` without a trailing slash, or ConfigError naming ``where``: as VULTR_API_URL,
    and plain http also to a link-local address (169.254.0.0/16)."""
    return validate_api_url(url, where, link_local=True)


def _lookup(variable: str, env: Mapping[str, str], from_file: Mapping[str, str],
            env_file: EnvFile) -> tuple[str, str, str]:
    """``variable``'s (value, name, source): each of its names (itself, then its ALIASES) from
    the environment, else the file; one set under two names takes the environment's name,
    else the first. Names set to different values are a ConfigError naming them, not the
    values."""
    found: list[tuple[str, str, str]] = []
    for name in (variable, *ALIASES.get(variable, ())):
        for source, values in ((SOURCE_ENV, env), (SOURCE_FILE, from_file)):
            if values.get(name, "").strip():
                found.append((values[name].strip(), name, source))
                break
    if len({value for value, _, _ in found}) > 1:
        raise ConfigError(" and ".join(named(n, s, env_file) for _, n, s in found)
                          + " are set to different values: they are one setting, keep one")
    return min(found, key=lambda f: f[2] != SOURCE_ENV, default=("", variable, SOURCE_UNSET))


def apply_account(stage: StageConfig, account: Account) -> StageConfig:
    """``stage`` with the account's bucket, S3 endpoint and region (``B2_S3_REGION``, else
    the one in a B2 endpoint's host name) and W&B project and entity in place of the
    configuration's, where they are set."""
    storage = stage.storage
    if account.b2_bucket:
        check_value(account.b2_bucket, "launcher.schema.json#/$defs/bucket",
                    _label("B2_BUCKET", account))
        storage = dataclasses.replace(storage, bucket=account.b2_bucket)
    if account.b2_s3_endpoint:
        endpoint = with_scheme(account.b2_s3_endpoint)
        check_value(endpoint, "launcher.schema.json#/$defs/endpoint_url",
                    _label("B2_S3_ENDPOINT", account))
        b2_region = B2_ENDPOINT.match(endpoint)
        storage = dataclasses.replace(
            storage, endpoint_url=endpoint,
            region=b2_region.group(1) if b2_region else storage.region)
    if account.b2_s3_region:
        if not S3_REGION.fullmatch(account.b2_s3_region):
            raise ConfigError(f"{_label('B2_S3_REGION', account)}: expected an S3 region name "
                              "such as us-west-002 (lowercase letters, digits and dashes, "
                              "1-63 characters)")
        storage = dataclasses.replace(storage, region=account.b2_s3_region)
    wandb = dataclasses.replace(stage.wandb,
                                project=account.wandb_project or stage.wandb.project,
                                entity=account.wandb_entity or stage.wandb.entity)
    return dataclasses.replace(stage, storage=storage, wandb=wandb)


def with_scheme(endpoint: str) -> str:
    """``https://`` before a bare host name, as the training repository's own ``.env``
    writes B2_S3_ENDPOINT (``s3.us-west-002.backblazeb2.com``: rclone's form)."""
    if "://" in endpoint or not BARE_HOST.fullmatch(endpoint):
        return endpoint
    return f"https://{endpoint}"


def vultr_settings(account: Account, environ: Mapping[str, str] | None = None) -> VultrSettings:
    """Settings for :class:`~launcher.vultr.VultrClient` with the account's URL and key (so a
    key in the ``.env`` file works too); timeouts from ``VULTR_*_TIMEOUT`` in ``environ``."""
    env = os.environ if environ is None else environ
    return VultrSettings(api_url=account.vultr_api_url, api_key=account.vultr_key or None,
                         timeouts=timeouts_from_env(env, "VULTR"))


def vast_settings(account: Account, environ: Mapping[str, str] | None = None) -> VastSettings:
    """Settings for :class:`~launcher.vast.VastClient` with the account's URL and key;
    timeouts from ``VAST_*_TIMEOUT`` in ``environ``."""
    env = os.environ if environ is None else environ
    return VastSettings(api_url=account.vast_api_url, api_key=account.vast_api_key or None,
                        timeouts=timeouts_from_env(env, "VAST"))


def named(variable: str, source: str, env_file: EnvFile) -> str:
    """``VARIABLE (from the environment)`` or ``VARIABLE (from PATH)``, for messages."""
    return f"{variable} (from {env_file.path if source == SOURCE_FILE else 'the environment'})"


def _label(variable: str, account: Account) -> str:
    return named(account.name(variable), account.source(variable), account.env_file)
