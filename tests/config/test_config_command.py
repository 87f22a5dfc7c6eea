"""``launcher config show`` end to end: every key masked with its source, in text and JSON;
overrides shown applied; bad input is one line and exit 2."""

from __future__ import annotations

import calendar
import json
import os
import time
from pathlib import Path

import pytest
from support.keys import ALL_FAKE_KEYS, FAKE_B2_APP_KEY, FAKE_VULTR_KEY

from launcher.cli import main
from launcher.render.serialise import load_cloud_config
from launcher.runner.spec import RunSpec

from .conftest import CONFIGS, FAKE_ACCOUNT, write_stage
from .test_account import OTHER_B2_KEY, UPS_DOTENV


@pytest.fixture(autouse=True)
def private_files():
    """Files these tests write are private, as a .env holding keys should be; else the
    launcher's once-per-process warning about an open .env lands on stderr in whichever test
    runs first."""
    previous = os.umask(0o077)
    yield
    os.umask(previous)


@pytest.fixture
def account_env(workdir, monkeypatch):
    """VULTR_KEY and W&B from the environment, the B2 keys and bucket from ./.env."""
    monkeypatch.setenv("VULTR_KEY", FAKE_VULTR_KEY)
    monkeypatch.setenv("WANDB_API_KEY", FAKE_ACCOUNT["WANDB_API_KEY"])
    (workdir / ".env").write_text(
        "# the B2 key for runs\n"
        f"export B2_APPLICATION_KEY_ID='{FAKE_ACCOUNT['B2_APPLICATION_KEY_ID']}'\n"
        f'B2_APPLICATION_KEY="{FAKE_B2_APP_KEY}"  # bucket-scoped\n'
        f"VULTR_KEY=ignored-the-environment-wins\n"
        "B2_BUCKET=my-runs\n")
    return workdir


def _show(*argv: str) -> list[str]:
    return ["config", "show", "--config-dir", str(CONFIGS), *argv]


def test_show_text_masks_every_key_and_says_where_it_came_from(account_env, capsys):
    assert main(_show("--stage", "diffusion")) == 0
    out, err = capsys.readouterr()
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert lines["VULTR_KEY"].split()[1:] == ["***", "(env)"]
    assert lines["B2_APPLICATION_KEY_ID"].split()[1:] == ["***", "(.env", "file)"]
    assert lines["B2_APPLICATION_KEY"].split()[1:] == ["***", "(.env", "file)"]
    assert lines["WANDB_API_KEY"].split()[1:] == ["***", "(env)"]
    assert lines["VULTR_SELF_DESTRUCT_KEY"].split()[1:] == ["-", "(unset)"]
    assert lines["B2_BUCKET"].split()[1:] == ["my-runs", "(.env", "file)"]
    assert "(unset: the default)" in lines["VULTR_API_URL"]
    assert "ignored-the-environment-wins" not in out
    assert "env file: .env (default, found)" in out
    assert "B2_KEY_ID <- B2_APPLICATION_KEY_ID" in out
    assert "stage diffusion (" in out and "bucket: my-runs" in out
    assert err == ""


def test_show_json_is_masked_and_complete(account_env, capsys):
    assert main(_show("--stage", "diffusion", "--json")) == 0
    report = json.loads(capsys.readouterr().out)
    variables = report["variables"]
    assert variables["VULTR_KEY"] == {"value": "***", "source": "env"}
    assert variables["B2_APPLICATION_KEY"] == {"value": "***", "source": ".env file",
                                               "name": "B2_APPLICATION_KEY"}
    assert variables["VULTR_SELF_DESTRUCT_KEY"] == {"value": None, "source": "unset"}
    assert variables["WANDB_PROJECT"] == {"value": None, "source": "unset"}
    assert report["instance_secrets"]["VULTR_KEY"] == "VULTR_KEY"
    stage = report["stage"]
    assert report["launcher_yaml"]["storage"]["bucket"] == "my-runs"
    assert [p["name"] for p in stage["gpu_profiles"]] == ["preferred", "40gb"]
    assert stage["env"]["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"
    assert report["notes"] == []


def test_show_applies_the_override_flags(account_env, capsys):
    argv = _show("--stage", "full", "--json", "--regions", "ewr", "--min-vram", "24",
                 "--max-price", "2", "--command", "python x.py", "--reuse-volume", "ups")
    assert main(argv) == 0
    stage = json.loads(capsys.readouterr().out)["stage"]
    assert stage["regions"] == ["ewr"] and stage["max_price_per_hour"] == 2
    assert [p["min_vram_gb"] for p in stage["gpu_profiles"]] == [24]
    assert stage["command"] == ["python", "x.py"]
    assert stage["volume"]["reuse_label"] == "launcher-cache-ups" and stage["volume"]["keep"]


def test_show_without_a_stage_lists_the_stages(workdir, capsys):
    assert main(_show("--json")) == 0
    report = json.loads(capsys.readouterr().out)
    assert "stage" not in report and {"smoke", "full"} <= set(report["stages"])
    assert main(_show("--max-hours", "2")) == 2
    assert capsys.readouterr().err == "error: override flags apply to a stage: add --stage NAME\n"


def test_show_notes_the_placeholder_bucket(workdir, capsys):
    assert main(_show("--stage", "smoke")) == 0
    err = capsys.readouterr().err
    assert err == "note: storage.bucket is the placeholder 'your-b2-bucket': set B2_BUCKET " \
        "or edit configs/launcher.yaml\n"


def test_show_names_the_alias_that_supplied_each_key(workdir, capsys):
    (workdir / ".env").write_text(UPS_DOTENV)  # the training repository's names
    assert main(_show("--stage", "diffusion")) == 0
    out, err = capsys.readouterr()
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert lines["B2_APPLICATION_KEY_ID"].split()[1:] == ["***", "(.env", "file,", "as",
                                                          "B2_KEY_ID)"]
    assert lines["B2_APPLICATION_KEY"].split()[1:] == ["***", "(.env", "file,", "as",
                                                       "B2_APP_KEY)"]
    assert lines["B2_S3_REGION"].split()[1:] == ["us-west-002", "(.env", "file)"]
    assert "B2_KEY_ID <- B2_KEY_ID, B2_APP_KEY <- B2_APP_KEY" in out
    assert "region: us-west-002" in out and "bucket: pdebench" in out
    assert not any(key in out + err for key in ALL_FAKE_KEYS) and err == ""
    assert main(_show("--stage", "diffusion", "--json")) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["variables"]["B2_APPLICATION_KEY_ID"] == {
        "value": "***", "source": ".env file", "name": "B2_KEY_ID"}
    assert report["variables"]["B2_S3_REGION"] == {"value": "us-west-002", "source": ".env file"}
    assert report["instance_secrets"]["B2_APP_KEY"] == "B2_APP_KEY"
    storage = report["launcher_yaml"]["storage"]
    assert (storage["bucket"], storage["region"], storage["endpoint_url"]) == (
        "pdebench", "us-west-002", "https://s3.us-west-002.backblazeb2.com")


@pytest.mark.parametrize("json_flag", [(), ("--json",)])
def test_show_refuses_a_key_under_two_names_with_different_values(workdir, monkeypatch,
                                                                  capsys, json_flag):
    (workdir / ".env").write_text(UPS_DOTENV)
    monkeypatch.setenv("B2_APPLICATION_KEY", OTHER_B2_KEY)
    assert main(_show("--stage", "diffusion", *json_flag)) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (
        "error: B2_APPLICATION_KEY (from the environment) and B2_APP_KEY (from .env) are set "
        "to different values: they are one setting, keep one\n")
    assert not any(key in out + err for key in (*ALL_FAKE_KEYS, OTHER_B2_KEY))


def test_show_takes_a_key_under_both_names_with_the_same_value(workdir, monkeypatch, capsys):
    (workdir / ".env").write_text(UPS_DOTENV)
    monkeypatch.setenv("B2_APPLICATION_KEY", FAKE_B2_APP_KEY)
    assert main(_show("--json")) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["variables"]["B2_APPLICATION_KEY"] == {
        "value": "***", "source": "env", "name": "B2_APPLICATION_KEY"}
    assert not any(key in out + err for key in ALL_FAKE_KEYS) and err == ""


def test_a_key_pasted_into_a_stage_is_masked_in_the_output(config_dir, workdir, monkeypatch,
                                                          capsys):
    monkeypatch.setenv("VULTR_KEY", FAKE_VULTR_KEY)
    write_stage(config_dir, "x1", f"name: x1\ncommand: [a]\nenv: {{OOPS: {FAKE_VULTR_KEY}}}\n")
    assert main(["config", "show", "--config-dir", str(config_dir), "--stage", "x1"]) == 0
    assert "OOPS: ***" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "expected"), [
    (["--stage", "smoke", "--max-price", "-3"], "--max-price: expected a number > 0, got -3.0"),
    (["--stage", "smoke", "--regions", ""], "--regions: expected at least 1 item"),
    (["--stage", "smoke", "--snapshot", "yesterday"],
     "--snapshot: expected latest, or one snapshot's id"),
    (["--stage", "nope"],
     "no such stage (known: diffusion, example, full, operator, operator-ddp, smoke)"),
])
def test_bad_input_is_one_line_and_exit_2(workdir, capsys, argv, expected):
    assert main(_show(*argv)) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and expected in err
    assert err.count("\n") == 1


def test_a_bad_stage_file_via_the_cli(config_dir, workdir, capsys):
    path = write_stage(config_dir, "x1", "name: x1\ncommand: [a]\ncolour: blue\n")
    assert main(["config", "show", "--config-dir", str(config_dir), "--stage", "x1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: field colour: unknown field (expected one of ")
    assert err.count("\n") == 1


def test_a_missing_explicit_env_file_is_exit_2_naming_it(workdir, capsys):
    assert main(["--env-file", "absent.env", "config", "show"]) == 2
    assert capsys.readouterr().err == "error: --env-file absent.env: no such file\n"


def test_config_alone_prints_its_usage(capsys):
    assert main(["config"]) == 2
    assert "show" in capsys.readouterr().out


def test_render_takes_keys_from_the_dotenv_file_and_the_flags(account_env, capsys):
    assert main(["render", "--stage", "smoke", "--config-dir", str(CONFIGS), "--json",
                 "--max-hours", "0.5"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["secrets_unset"] == [] and report["variables_unset"] == []
    assert "not set" not in err
    load_cloud_config(report["document"])
    spec = RunSpec.from_json(json.dumps(report["spec"]))  # what the bootstrap will fetch
    started = calendar.timegm(time.strptime(spec.run_id, "smoke-%Y%m%d-%H%M%S"))
    assert 1800 <= spec.deadline_epoch - started <= 1801  # --max-hours 0.5


def test_inside_a_training_checkout_the_launcher_s_configs_live_in_dot_launcher(
        tmp_path, monkeypatch):
    from launcher.config import config_dir_for
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").mkdir()  # the training repository's own configs
    assert config_dir_for(None, {}) == Path("configs")
    (tmp_path / ".launcher").mkdir()
    assert config_dir_for(None, {}) == Path(".launcher")
    assert config_dir_for(None, {"LAUNCHER_CONFIG_DIR": "elsewhere"}) == Path("elsewhere")
    assert config_dir_for(Path("flag"), {"LAUNCHER_CONFIG_DIR": "elsewhere"}) == Path("flag")


def test_show_writes_the_data_set_and_the_ups_section_as_a_stage_file_does(account_env,
                                                                           capsys):
    assert main(_show("--stage", "operator", "--json")) == 0
    report = json.loads(capsys.readouterr().out)
    stage = report["stage"]
    assert stage["data"]["links"] == {
        "pdebench/burgers1d_train.h5": "full/burgers1d/burgers1d_train_000.h5"}
    assert stage["data"]["sources"][0] == {"prefix": "full/burgers1d", "dest": "full/burgers1d",
                                           "include": ["burgers1d_train_000.h5"]}
    assert stage["ups"]["train"] == ["operator"] and stage["ups"]["overrides"] == {}
    assert stage["ups"]["code_links"] == {"reports": "reports"}
    assert stage["python_env"]["install"] == ["-e", "."]
    assert "command" not in stage  # a stage has command or ups, not both
    assert report["command"][:2] == ["python", "scripts/run_fast_to_sota.py"]
