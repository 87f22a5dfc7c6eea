"""How the run commands find the bucket and the stage from any machine: the account's
variables (environment over ``.env``), over ``configs/launcher.yaml`` where there is one.

``status``, ``logs``, ``teardown`` and ``gc`` need no configuration directory: with
``B2_BUCKET``, ``B2_S3_ENDPOINT`` and the B2 keys set they read ``runs/`` of that bucket.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from launcher.bucket import Bucket, BucketAddress
from launcher.config import (
    DEFAULTS_FILE,
    Account,
    StageConfig,
    load_checked,
    load_stage,
    merge,
    run_secrets,
)
from launcher.config.view import PLACEHOLDER_BUCKET
from launcher.errors import ConfigError
from launcher.operate.runstatus import NoBucket

DEFAULT_RUNS_PREFIX = "runs"


def _storage_defaults(config_dir: Path) -> dict:
    """``storage`` of ``launcher.yaml`` ({} when the file does not exist; a bad file raises)."""
    path = config_dir / DEFAULTS_FILE
    if not path.is_file():
        return {}
    return dict(load_checked(path, "launcher.schema.json").get("storage", {}))


def bucket_address(account: Account, config_dir: Path) -> BucketAddress:
    """Where runs live; ConfigError naming what to set when the bucket is not configured."""
    storage = _storage_defaults(config_dir)
    bucket = account.b2_bucket or storage.get("bucket", "")
    endpoint = account.b2_s3_endpoint or storage.get("endpoint_url", "")
    if not bucket or bucket == PLACEHOLDER_BUCKET or not endpoint:
        raise ConfigError("the bucket is not configured: set B2_BUCKET and B2_S3_ENDPOINT "
                          f"(or storage.bucket and storage.endpoint_url in {config_dir})")
    return BucketAddress(endpoint, bucket, storage.get("runs_prefix") or DEFAULT_RUNS_PREFIX)


def open_bucket(account: Account, config_dir: Path,
                environ: Mapping[str, str] | None = None) -> Bucket:
    """The runs bucket with the account's B2 key; ConfigError when something is missing."""
    address = bucket_address(account, config_dir)
    if not (account.b2_key_id and account.b2_key):
        raise ConfigError("the B2 key is not set: set B2_APPLICATION_KEY_ID and "
                          "B2_APPLICATION_KEY (an application key with access to "
                          f"{address.bucket})")
    return Bucket(address, run_secrets(account), os.environ if environ is None else environ)


def try_bucket(account: Account, config_dir: Path,
               environ: Mapping[str, str] | None = None) -> Bucket | NoBucket:
    """:func:`open_bucket`, or a :class:`NoBucket` saying why (Vultr's side still shows)."""
    try:
        return open_bucket(account, config_dir, environ)
    except ConfigError as exc:
        return NoBucket(exc.message)


def stage_for(config_dir: Path, name: str | None) -> StageConfig:
    """Stage ``name`` from the files (its regions, GPU profiles and image); without a name,
    ``launcher.yaml``'s defaults alone. The account's bucket settings are not applied: the
    bucket is checked by listing it."""
    if name:
        return load_stage(config_dir, name)
    path = config_dir / DEFAULTS_FILE
    defaults = load_checked(path, "launcher.schema.json")
    return merge(defaults, {"name": "defaults", "command": ["true"]},
                 files=(str(path), "(no stage: the defaults)"))
