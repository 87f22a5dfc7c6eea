"""``LAUNCHER_INSTANCE_API_URL`` / ``LAUNCHER_INSTANCE_S3_ENDPOINT``: the addresses the
instance is told to use when they differ from the launcher's own (an emulator whose machines
are virtual machines). Checked like ``VULTR_API_URL``, with link-local http allowed too; used
only in the run spec the document carries."""

from __future__ import annotations

import json

import pytest

from launcher.cli import main
from launcher.config import apply_account, load_account, load_stage
from launcher.errors import ConfigError
from launcher.render.stage import LaunchFacts, stage_run_spec

from .conftest import CONFIGS

API = "LAUNCHER_INSTANCE_API_URL"
S3 = "LAUNCHER_INSTANCE_S3_ENDPOINT"


def test_unset_they_default_to_the_launchers_own_addresses(workdir):
    account = load_account({"VULTR_API_URL": "http://127.0.0.1:8080/v2"})
    assert (account.instance_api_url, account.instance_s3_endpoint) == ("", "")
    assert account.api_url_for_instance == "http://127.0.0.1:8080/v2"
    assert account.source(API) == "unset" and account.source(S3) == "unset"


@pytest.mark.parametrize("value", [
    "http://169.254.100.10/v2/", "http://169.254.0.1:8080/v2", "https://api.vultr.com/v2",
    "http://127.0.0.1:9000", "http://localhost:9000/",
])
def test_https_loopback_and_link_local_http_are_accepted(workdir, value):
    account = load_account({API: value, S3: value})
    assert account.instance_api_url == value.rstrip("/")
    assert account.instance_s3_endpoint == value.rstrip("/")
    assert account.source(API) == "env"


@pytest.mark.parametrize(("value", "words"), [
    ("http://10.0.0.5/v2", "uses plain http for '10.0.0.5'"),
    ("http://169.255.0.1/v2", "uses plain http for '169.255.0.1'"),
    ("http://api.example.com/v2", "uses plain http for 'api.example.com'"),
    ("ftp://169.254.100.10/v2", "must be an http(s) URL with a host"),
    ("http://user:pw@169.254.100.10/v2", "must not carry credentials"),
    ("http://169.254.100.10:99999/v2", "is not a valid URL"),
    ("169.254.100.10", "must be an http(s) URL with a host"),
])
@pytest.mark.parametrize("variable", [API, S3])
def test_anything_else_is_a_config_error_naming_the_variable(workdir, variable, value, words):
    with pytest.raises(ConfigError) as raised:
        load_account({variable: value})
    assert str(raised.value).startswith(f"{variable} (from the environment) ")
    assert words in str(raised.value)


def test_a_bad_value_in_the_dotenv_file_is_named_with_the_file(workdir):
    (workdir / ".env").write_text(f"{S3}=http://192.168.1.2:9000\n")
    with pytest.raises(ConfigError, match=rf"^{S3} \(from \.env\) uses plain http"):
        load_account({})


def test_only_the_instances_run_spec_uses_them(workdir):
    account = load_account({
        "VULTR_API_URL": "http://127.0.0.1:8080/v2", "B2_S3_ENDPOINT": "http://127.0.0.1:9000",
        API: "http://169.254.100.10/v2", S3: "http://169.254.100.11"})
    stage = apply_account(load_stage(CONFIGS, "example"), account)
    assert stage.storage.endpoint_url == "http://127.0.0.1:9000"  # the launcher's own
    facts = LaunchFacts(run_id="example-1", block_id="b", mount_id="m",
                        api_url=account.api_url_for_instance,
                        storage_endpoint=account.instance_s3_endpoint)
    spec = stage_run_spec(stage, facts, 1_000_000.0)
    assert spec.api_url == "http://169.254.100.10/v2"
    assert spec.storage.endpoint_url == "http://169.254.100.11"
    default = stage_run_spec(stage, LaunchFacts(run_id="example-1", block_id="b",
                                                mount_id="m"), 1_000_000.0)
    assert default.storage.endpoint_url == "http://127.0.0.1:9000"


def test_config_show_lists_both_with_their_source(workdir, monkeypatch, capsys):
    monkeypatch.setenv(API, "http://169.254.100.10/v2")
    assert main(["config", "show", "--config-dir", str(CONFIGS), "--json"]) == 0
    variables = json.loads(capsys.readouterr().out)["variables"]
    assert variables[API] == {"value": "http://169.254.100.10/v2", "source": "env"}
    assert variables[S3] == {"value": None, "source": "unset"}
    assert main(["config", "show", "--config-dir", str(CONFIGS)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()
             if line.startswith("  ")}
    assert lines[API].split()[1:] == ["http://169.254.100.10/v2", "(env)"]
    assert lines[S3].split()[1:] == ["-", "(unset)"]
