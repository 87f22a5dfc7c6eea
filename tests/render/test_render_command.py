"""``launcher render`` end to end: the document is printed with every secret masked, and a
bad stage file is one line naming the file and the field, exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support.keys import ALL_FAKE_KEYS

from launcher.cli import main
from launcher.render import MAX_USER_DATA_BYTES
from launcher.render.schema import validate_document
from launcher.render.serialise import load_cloud_config
from launcher.runner.boot import BootSpec
from launcher.runner.spec import SECRET_NAMES, RunSpec

from .conftest import FAKE_SECRETS

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
# The launcher's own variable names for the instance's four secrets.
LAUNCHER_NAMES = {"VULTR_KEY": "VULTR_KEY", "B2_KEY_ID": "B2_APPLICATION_KEY_ID",
                  "B2_APP_KEY": "B2_APPLICATION_KEY", "WANDB_API_KEY": "WANDB_API_KEY"}


@pytest.fixture
def fake_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAKE_SECRETS.items():
        monkeypatch.setenv(LAUNCHER_NAMES[name], value)
    monkeypatch.delenv("LAUNCHER_CONFIG_DIR", raising=False)
    monkeypatch.chdir(ROOT)


def _no_secret_in(*texts: str) -> None:
    assert not any(key in text for key in ALL_FAKE_KEYS for text in texts)


def test_render_prints_the_document_with_every_secret_masked(fake_env, capsys):
    assert main(["render", "--stage", "diffusion"]) == 0
    out, err = capsys.readouterr()
    _no_secret_in(out, err)
    document = load_cloud_config(out)
    validate_document(document)
    env_file = next(f for f in document["write_files"] if f["path"].endswith("secrets.env"))
    assert env_file["content"] == "".join(f"{n}=<secret:{n}>\n" for n in SECRET_NAMES)
    boot_file = next(f for f in document["write_files"] if f["path"].endswith("boot.json"))
    boot = BootSpec.from_json(boot_file["content"])
    assert boot.run_id.startswith("diffusion-") and boot.block_id == "<created-at-launch>"
    assert [p.path for p in boot.files] == ["/opt/launcher/runner.pyz", "/etc/launcher/run.json"]
    assert not any(f["path"].endswith("run.json") for f in document["write_files"])
    assert "diffusion: document" in err and f"of {MAX_USER_DATA_BYTES:,} bytes" in err
    assert "not set in the environment" not in err and "note:" not in err


def test_render_json_reports_sizes_and_the_masked_document(fake_env, capsys):
    assert main(["render", "--stage", "smoke", "--json"]) == 0
    out, err = capsys.readouterr()
    _no_secret_in(out, err)
    report = json.loads(out)
    assert report["stage"] == "smoke" and report["secrets_set"] == list(SECRET_NAMES)
    assert report["secrets_unset"] == []
    assert report["size"]["document_bytes"] <= report["size"]["limit_bytes"] == 16 * 1024
    assert "launcher/runner/spec.py" in report["runner_files"]
    spec = RunSpec.from_json(json.dumps(report["spec"]))
    assert spec.stage == "smoke" and report["size"]["spec_bytes"] == len(spec.to_json()) + 1
    assert "<secret:VULTR_KEY>" in report["document"]


@pytest.mark.parametrize("stage", sorted(p.stem for p in (CONFIGS / "stages").glob("*.yaml")))
def test_every_stage_renders_within_16_kib(fake_env, capsys, stage):
    assert main(["render", "--stage", stage, "--config-dir", str(CONFIGS), "--json"]) == 0
    size = json.loads(capsys.readouterr().out)["size"]
    assert size["document_bytes"] <= 16 * 1024 and size["boot_encoding"] == "gz+b64"
    assert size["runner_bytes"] > 100_000  # the runner is fetched, not carried


def test_render_out_writes_only_the_masked_document(fake_env, capsys, tmp_path):
    target = tmp_path / "user-data.yaml"
    assert main(["render", "--stage", "diffusion", "--out", str(target), "--json"]) == 0
    out, err = capsys.readouterr()
    written = target.read_text()
    _no_secret_in(out, err, written)
    report = json.loads(out)
    assert report["out"] == str(target) and "document" not in report
    assert written.startswith("#cloud-config\n") and "<secret:B2_APP_KEY>" in written


def test_render_without_keys_marks_them_unset(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert main(["render", "--stage", "smoke"]) == 0
    out, err = capsys.readouterr()
    assert "VULTR_KEY=<unset:VULTR_KEY>" in out
    assert ("not set in the environment or /dev/null: VULTR_KEY, B2_APPLICATION_KEY_ID, "
            "B2_APPLICATION_KEY, WANDB_API_KEY") in err


def test_a_bad_stage_file_is_one_line_naming_file_and_field(fake_env, capsys, tmp_path):
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    bad = configs / "stages" / "smoke.yaml"
    bad.write_text("name: smoke\ncommand: [python3]\ngpu_profiles:\n  - min_vram_gb: lots\n")
    code = main(["render", "--stage", "smoke", "--config-dir", str(configs)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err == (f"error: {bad}: field gpu_profiles.0.min_vram_gb: expected integer, "
                   "got string\n")


def test_the_config_dir_can_come_from_the_environment(fake_env, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("LAUNCHER_CONFIG_DIR", str(tmp_path))
    assert main(["render", "--stage", "smoke"]) == 2
    assert f"error: {tmp_path}/stages/smoke.yaml: no such stage" in capsys.readouterr().err


def test_an_unwritable_out_file_is_a_clean_error(fake_env, capsys, tmp_path):
    assert main(["render", "--stage", "smoke", "--out", str(tmp_path / "no" / "x")]) == 2
    out, err = capsys.readouterr()
    _no_secret_in(out, err)
    assert err.startswith("error: --out ") and "cannot write" in err
