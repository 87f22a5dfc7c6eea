"""Keys and account settings: the environment wins over the .env file, a named file must
exist, keys stay masked, and they reach the instance under its own names."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from support.keys import (
    ALL_FAKE_KEYS,
    FAKE_B2_APP_KEY,
    FAKE_B2_KEY_ID,
    FAKE_VULTR_KEY,
    FAKE_WANDB_KEY,
)

from launcher.config import (
    Account,
    apply_account,
    load_account,
    load_stage,
    run_secrets,
    vultr_settings,
)
from launcher.errors import ConfigError
from launcher.runner.spec import SECRET_NAMES

from .conftest import CONFIGS, FAKE_ACCOUNT

SELF_DESTRUCT_KEY = "FAKE-self-destruct-not-in-the-scan"


def _dotenv(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def test_the_environment_wins_over_the_dotenv_file(workdir):
    _dotenv(workdir / ".env", {"VULTR_KEY": "from-the-file-1234", "B2_BUCKET": "file-bucket",
                               "WANDB_PROJECT": "file-project"})
    account = load_account({"VULTR_KEY": FAKE_VULTR_KEY, "WANDB_PROJECT": "env-project",
                            "B2_BUCKET": "  "})  # blank counts as unset
    assert account.vultr_key.reveal() == FAKE_VULTR_KEY
    assert (account.b2_bucket, account.wandb_project) == ("file-bucket", "env-project")
    assert account.source("VULTR_KEY") == "env" and account.source("B2_BUCKET") == ".env file"
    assert account.source("WANDB_ENTITY") == "unset" and account.wandb_entity == ""
    assert account.env_file.path == ".env" and account.env_file.found


def test_a_missing_default_dotenv_file_is_fine(workdir):
    account = load_account({})
    assert account == Account(sources=account.sources, env_file=account.env_file)
    assert not account.env_file.found and account.env_file.named_by == "default"
    assert account.vultr_api_url == "https://api.vultr.com/v2"


@pytest.mark.parametrize("named_by", ["--env-file", "LAUNCHER_ENV_FILE"])
def test_a_named_dotenv_file_must_exist(workdir, named_by):
    missing = workdir / "nope.env"
    flag, environ = (missing, {}) if named_by == "--env-file" else \
        (None, {"LAUNCHER_ENV_FILE": str(missing)})
    with pytest.raises(ConfigError) as raised:
        load_account(environ, flag)
    assert str(raised.value) == f"{named_by} {missing}: no such file"


def test_the_flag_beats_the_variable_which_beats_the_default(workdir):
    _dotenv(workdir / ".env", {"WANDB_ENTITY": "default"})
    _dotenv(workdir / "var.env", {"WANDB_ENTITY": "variable"})
    _dotenv(workdir / "flag.env", {"WANDB_ENTITY": "flag"})
    variable = {"LAUNCHER_ENV_FILE": "var.env"}
    assert load_account({}).wandb_entity == "default"
    assert load_account(variable).wandb_entity == "variable"
    assert load_account(variable, "flag.env").wandb_entity == "flag"
    assert load_account(variable, "flag.env").env_file.named_by == "--env-file"


def test_keys_are_masked_everywhere_a_person_could_look(workdir):
    account = load_account(FAKE_ACCOUNT)
    shown = [repr(account), str(account), f"{account}"]
    assert not any(key in text for key in ALL_FAKE_KEYS for text in shown)
    assert "Secret('***')" in repr(account)
    assert len(account.secrets()) == 4
    with pytest.raises(TypeError, match="not serialisable"):  # no asdict/JSON/pickle way out
        dataclasses.asdict(account)


def test_the_instance_gets_its_own_names():
    account = load_account(FAKE_ACCOUNT)
    secrets = run_secrets(account)
    assert {n: secrets.get(n) for n in SECRET_NAMES} == {
        "VULTR_KEY": FAKE_VULTR_KEY, "B2_KEY_ID": FAKE_B2_KEY_ID,
        "B2_APP_KEY": FAKE_B2_APP_KEY, "WANDB_API_KEY": FAKE_WANDB_KEY}
    assert "***" not in repr(secrets) and FAKE_VULTR_KEY not in repr(secrets)


def test_the_self_destruct_key_replaces_the_main_key_on_the_instance():
    account = load_account({**FAKE_ACCOUNT, "VULTR_SELF_DESTRUCT_KEY": SELF_DESTRUCT_KEY})
    assert run_secrets(account).get("VULTR_KEY") == SELF_DESTRUCT_KEY
    assert account.vultr_key.reveal() == FAKE_VULTR_KEY  # the launcher's own calls keep it
    settings = vultr_settings(account, {"VULTR_READ_TIMEOUT": "7"})
    assert settings.api_key == account.vultr_key and settings.timeouts.read == 7


def test_the_api_url_is_checked_and_named_with_its_source(workdir):
    _dotenv(workdir / ".env", {"VULTR_API_URL": "http://api.example.com/v2"})
    with pytest.raises(ConfigError, match=r"^VULTR_API_URL \(from \.env\) uses plain http"):
        load_account({})
    url = load_account({"VULTR_API_URL": "http://127.0.0.1:8080/v2/"}).vultr_api_url
    assert url == "http://127.0.0.1:8080/v2"


def test_bucket_endpoint_and_wandb_from_the_account_replace_the_placeholders():
    stage = load_stage(CONFIGS, "smoke")
    account = load_account({"B2_BUCKET": "runs-bucket", "WANDB_PROJECT": "ups",
                            "B2_S3_ENDPOINT": "https://s3.eu-central-003.backblazeb2.com"})
    applied = apply_account(stage, account)
    assert (applied.storage.bucket, applied.storage.region) == ("runs-bucket", "eu-central-003")
    assert applied.storage.endpoint_url == "https://s3.eu-central-003.backblazeb2.com"
    assert (applied.wandb.project, applied.wandb.entity) == ("ups", stage.wandb.entity)
    assert applied.storage.data_prefix == stage.storage.data_prefix
    assert apply_account(stage, load_account({})) == stage


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("B2_BUCKET", "Bad_Bucket", "B2_BUCKET (from the environment): expected a string matching"),
    ("B2_S3_ENDPOINT", "http://s3.example.com", "B2_S3_ENDPOINT (from the environment): "
     "expected a string matching"),
])
def test_a_bad_account_setting_is_named_with_its_source(variable, value, expected):
    with pytest.raises(ConfigError) as raised:
        apply_account(load_stage(CONFIGS, "smoke"), load_account({variable: value}))
    assert str(raised.value).startswith(expected)


def test_old_b2_names_earn_a_note_not_a_value():
    account = load_account({"B2_KEY_ID": FAKE_B2_KEY_ID})
    assert not account.b2_key_id
    assert account.legacy_names == (("B2_KEY_ID", "B2_APPLICATION_KEY_ID"),)
