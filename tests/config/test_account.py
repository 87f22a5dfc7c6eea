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
    instance_secret_sources,
    load_account,
    load_stage,
    run_secrets,
    vultr_settings,
)
from launcher.errors import ConfigError
from launcher.runner.spec import SECRET_NAMES

from .conftest import CONFIGS, FAKE_ACCOUNT

SELF_DESTRUCT_KEY = "FAKE-self-destruct-not-in-the-scan"
OTHER_B2_KEY = "FAKE-second-b2-key-never-shown-9QzX"  # a B2 key the other name disagrees with
B2_EAST = "https://s3.eu-central-003.backblazeb2.com"
# A .env as the training repository (emgun/universal_simulator) writes it: its B2 key names.
# As the training repository's own docs write it: the endpoint as a bare host (rclone's form).
UPS_DOTENV = (f"export B2_KEY_ID={FAKE_B2_KEY_ID}\n"
              f"export B2_APP_KEY={FAKE_B2_APP_KEY}\n"
              "export B2_S3_ENDPOINT=s3.us-west-002.backblazeb2.com\n"
              "export B2_S3_REGION=us-west-002\n"
              "export B2_BUCKET=pdebench  # Your B2 bucket name\n"
              f"WANDB_API_KEY={FAKE_WANDB_KEY}\n")


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
    ("B2_BUCKET", "Bad_Bucket", "B2_BUCKET (from the environment): expected an S3 bucket name"),
    ("B2_S3_ENDPOINT", "http://s3.example.com", "B2_S3_ENDPOINT (from the environment): "
     "expected an https URL, or plain http to a loopback host only"),
    ("B2_S3_REGION", "US_West", "B2_S3_REGION (from the environment): expected an S3 region"),
    ("B2_S3_REGION", "a" * 64, "B2_S3_REGION (from the environment): expected an S3 region"),
])
def test_a_bad_account_setting_is_named_with_its_source(variable, value, expected):
    with pytest.raises(ConfigError) as raised:
        apply_account(load_stage(CONFIGS, "smoke"), load_account({variable: value}))
    assert str(raised.value).startswith(expected)


def test_the_training_repositorys_dotenv_loads_unchanged(workdir):
    (workdir / ".env").write_text(UPS_DOTENV)
    account = load_account({})
    assert (account.b2_key_id.reveal(), account.b2_key.reveal()) == (FAKE_B2_KEY_ID,
                                                                     FAKE_B2_APP_KEY)
    assert account.wandb_api_key.reveal() == FAKE_WANDB_KEY
    assert (account.b2_bucket, account.b2_s3_region) == ("pdebench", "us-west-002")
    assert account.name("B2_APPLICATION_KEY_ID") == "B2_KEY_ID"
    assert account.name("B2_APPLICATION_KEY") == "B2_APP_KEY"
    assert account.source("B2_APPLICATION_KEY") == ".env file"
    assert instance_secret_sources(account) == {
        "VULTR_KEY": "VULTR_KEY", "B2_KEY_ID": "B2_KEY_ID", "B2_APP_KEY": "B2_APP_KEY",
        "WANDB_API_KEY": "WANDB_API_KEY"}
    secrets = run_secrets(account)
    assert (secrets.get("B2_KEY_ID"), secrets.get("B2_APP_KEY")) == (FAKE_B2_KEY_ID,
                                                                     FAKE_B2_APP_KEY)
    storage = apply_account(load_stage(CONFIGS, "smoke"), account).storage
    assert (storage.bucket, storage.region) == ("pdebench", "us-west-002")
    assert storage.endpoint_url == "https://s3.us-west-002.backblazeb2.com"


def test_the_region_variable_wins_over_the_endpoints():
    stage = load_stage(CONFIGS, "smoke")
    for endpoint in (B2_EAST, "https://s3.example.com"):
        account = load_account({"B2_S3_ENDPOINT": endpoint, "B2_S3_REGION": "us-west-002"})
        assert apply_account(stage, account).storage.region == "us-west-002"
    alone = apply_account(stage, load_account({"B2_S3_REGION": "auto"})).storage
    assert (alone.region, alone.endpoint_url) == ("auto", stage.storage.endpoint_url)


def test_a_bad_region_in_the_dotenv_file_is_named_with_the_file(workdir):
    _dotenv(workdir / ".env", {"B2_S3_REGION": "us west"})
    with pytest.raises(ConfigError, match=r"^B2_S3_REGION \(from \.env\): expected an S3"):
        apply_account(load_stage(CONFIGS, "smoke"), load_account({}))


@pytest.mark.parametrize(("environ", "in_file", "expected"), [
    ({"B2_APPLICATION_KEY": FAKE_B2_APP_KEY, "B2_APP_KEY": OTHER_B2_KEY}, {},
     "B2_APPLICATION_KEY (from the environment) and B2_APP_KEY (from the environment)"),
    ({"B2_APPLICATION_KEY": FAKE_B2_APP_KEY}, {"B2_APP_KEY": OTHER_B2_KEY},
     "B2_APPLICATION_KEY (from the environment) and B2_APP_KEY (from .env)"),
    ({"B2_APP_KEY": OTHER_B2_KEY}, {"B2_APPLICATION_KEY": FAKE_B2_APP_KEY},
     "B2_APPLICATION_KEY (from .env) and B2_APP_KEY (from the environment)"),
    ({}, {"B2_APPLICATION_KEY_ID": FAKE_B2_KEY_ID, "B2_KEY_ID": OTHER_B2_KEY},
     "B2_APPLICATION_KEY_ID (from .env) and B2_KEY_ID (from .env)"),
])
def test_a_b2_key_under_both_names_with_different_values_is_an_error(workdir, environ,
                                                                     in_file, expected):
    _dotenv(workdir / ".env", in_file)
    with pytest.raises(ConfigError) as raised:
        load_account(environ)
    message = str(raised.value)
    assert message == f"{expected} are set to different values: they are one setting, keep one"
    assert not any(key in message for key in (*ALL_FAKE_KEYS, OTHER_B2_KEY))


def test_a_b2_key_under_both_names_with_the_same_value_is_fine(workdir):
    # Each name environment over file: B2_KEY_ID is the environment's, equal to the file's
    # B2_APPLICATION_KEY_ID; the file's own B2_KEY_ID is not read.
    _dotenv(workdir / ".env", {"B2_APPLICATION_KEY_ID": FAKE_B2_KEY_ID, "B2_KEY_ID": OTHER_B2_KEY,
                               "B2_APPLICATION_KEY": FAKE_B2_APP_KEY,
                               "B2_APP_KEY": FAKE_B2_APP_KEY})
    account = load_account({"B2_KEY_ID": FAKE_B2_KEY_ID})
    assert account.b2_key_id.reveal() == FAKE_B2_KEY_ID
    assert (account.name("B2_APPLICATION_KEY_ID"), account.source("B2_APPLICATION_KEY_ID")) == \
        ("B2_KEY_ID", "env")
    assert account.b2_key.reveal() == FAKE_B2_APP_KEY
    assert (account.name("B2_APPLICATION_KEY"), account.source("B2_APPLICATION_KEY")) == \
        ("B2_APPLICATION_KEY", ".env file")
