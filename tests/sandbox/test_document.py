"""Reading run documents as cloud-init would: what is understood, and what is refused."""

from __future__ import annotations

import base64
import gzip
import time

import pytest
import yaml

from launcher.render import BootInputs, build_runner_zipapp, render
from launcher.render.pipeline import boot_zipapp
from launcher.runner.boot import BootSpec
from launcher.runner.spec import CodeSource, HealthSpec, RunSpec, Storage, VolumeSpec
from launcher.sandbox.document import (
    DocumentRefused,
    decode_content,
    decode_file,
    interpret_runcmd,
    parse_document,
    read_unit,
)
from launcher.sandbox.respec import SpecRefused, is_loopback_url, sandbox_spec

from .conftest import SECRETS


def spec(**changes) -> RunSpec:
    fields = dict(run_id="doc-run-1", stage="demo", command=("python3", "train.py"),
                  code=CodeSource(tarball_key="code/x.tar.gz", sha256="0" * 64),
                  storage=Storage("http://127.0.0.1:9000", "b", "data"),
                  volume=VolumeSpec(block_id="blk", mount_id="sea-1234"),
                  deadline_epoch=time.time() + 60, health=HealthSpec(cpu_only=True),
                  api_url="http://127.0.0.1:8000/v2")
    fields.update(changes)
    return RunSpec(**fields)


@pytest.fixture(scope="module")
def rendered():
    return render(spec(), SECRETS, BootInputs(build_runner_zipapp(), delete_volume=True))


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_the_rendered_document_is_understood(rendered):
    plan = parse_document(rendered.user_data_b64)
    assert plan.unit == "launcher-runner.service"
    assert plan.exec_start == ("/usr/bin/python3", "/opt/launcher/runner.pyz", "supervise",
                               "--spec", "/etc/launcher/run.json")
    assert plan.exec_start_pre == ("/usr/bin/python3", "/opt/launcher/boot.pyz", "fetch",
                                   "--boot", "/etc/launcher/boot.json")
    assert ("PYTHONUNBUFFERED", "1") in plan.environment
    assert plan.file("/opt/launcher/boot.pyz").data == boot_zipapp()
    assert plan.file("/opt/launcher/boot.pyz").mode == 0o755
    assert plan.file("/etc/launcher/secrets.env").mode == 0o600
    assert BootSpec.from_json(plan.file("/etc/launcher/boot.json").data.decode()).run_id == \
        "doc-run-1"
    with pytest.raises(DocumentRefused, match="run.json"):
        plan.file("/etc/launcher/run.json")  # fetched by the bootstrap, not carried
    assert any("watchdog.timer" in item for item in plan.ignored)


@pytest.mark.parametrize("encoding, content, expected", [
    ("b64", base64.b64encode(b"\x00bytes").decode(), b"\x00bytes"),
    ("base64", base64.b64encode(b"x").decode(), b"x"),
    ("gz+b64", base64.b64encode(gzip.compress(b"zipped")).decode(), b"zipped"),
    ("gzip+base64", base64.b64encode(gzip.compress(b"z")).decode(), b"z"),
    ("text/plain", "plain", b"plain"),
    ("", "plain", b"plain"),
])
def test_cloud_init_encodings_decode(encoding, content, expected):
    assert decode_content(content, encoding, "f") == expected


@pytest.mark.parametrize("encoding, content, words", [
    ("b64", "not base64!", "does not decode"),
    ("gz+b64", base64.b64encode(b"not gzip").decode(), "does not decode"),
    ("uuencode", "x", "not understood"),
])
def test_bad_content_is_refused(encoding, content, words):
    with pytest.raises(DocumentRefused, match=words):
        decode_content(content, encoding, "f")


@pytest.mark.parametrize("entry, words", [
    ({"path": "relative/x", "content": ""}, "clean absolute path"),
    ({"path": "/etc/../x", "content": ""}, "clean absolute path"),
    ({"path": "/x", "content": "", "append": True}, "unknown key"),
    ({"path": "/x", "content": "", "permissions": "rwx"}, "permissions"),
])
def test_bad_files_are_refused(entry, words):
    with pytest.raises(DocumentRefused, match=words):
        decode_file(entry, 0)


@pytest.mark.parametrize("runcmd, words", [
    ([["sh", "-c", "curl x | sh"]], "not understood"),
    ([["systemctl", "daemon-reload"]], "exactly one service"),
    ([["systemctl", "start", "a.service"], ["systemctl", "start", "b.service"]],
     "exactly one service"),
    (["systemctl start a.service"], "argv list"),
])
def test_unknown_commands_are_refused(runcmd, words):
    with pytest.raises(DocumentRefused, match=words):
        interpret_runcmd(runcmd)


def test_a_unit_without_exec_start_is_refused():
    with pytest.raises(DocumentRefused, match="no ExecStart"):
        read_unit("[Unit]\nDescription=x\n", "x.service")


def test_broken_yaml_is_refused_without_quoting_the_document():
    text = "#cloud-config\nwrite_files: [\n  - {path: /x, content: SECRETVALUE\n"
    with pytest.raises(DocumentRefused, match="not valid YAML") as info:
        parse_document(b64(text))
    assert "SECRETVALUE" not in str(info.value)


def test_package_upgrades_are_refused(rendered):
    document = yaml.safe_load(rendered.text)
    document["package_upgrade"] = True
    with pytest.raises(DocumentRefused, match="package_upgrade"):
        parse_document(b64("#cloud-config\n" + yaml.safe_dump(document)))


def test_loopback_urls():
    assert is_loopback_url("http://127.0.0.1:8000/v2")
    assert is_loopback_url("http://localhost:9")
    assert is_loopback_url("http://[::1]:9")
    assert not is_loopback_url("https://api.vultr.com/v2")
    assert not is_loopback_url("http://10.0.0.1/")
    assert not is_loopback_url("file:///etc/passwd")


def test_the_sandbox_spec_moves_paths_and_refuses_the_rest(tmp_path):
    moved, rewrites = sandbox_spec(spec(wandb=spec().wandb), tmp_path,
                                   metadata_url="http://127.0.0.1:1/i", trainer_user="me")
    assert moved.paths.state_dir == str(tmp_path / "var/lib/launcher")
    assert moved.volume.mount_point == str(tmp_path / "mnt/cache")
    assert moved.wandb.mode == "offline"
    assert {r.field for r in rewrites} >= {"wandb.mode", "metadata_url", "paths.trainer_user"}
    with pytest.raises(SpecRefused, match="bucket|storage.endpoint_url"):
        sandbox_spec(spec(storage=Storage("https://s3.us-west-004.backblazeb2.com", "b", "d")),
                     tmp_path, metadata_url="", trainer_user="me")
    with pytest.raises(SpecRefused, match="git_url"):
        sandbox_spec(spec(code=CodeSource(kind="git", git_url="https://github.com/a/b",
                                          git_commit="0" * 40)),
                     tmp_path, metadata_url="", trainer_user="me")


def test_the_volume_s_paths_in_the_command_follow_the_mount_and_ups_w_and_b_goes_off(tmp_path):
    argv = ("python", "scripts/run_fast_to_sota.py", "--run-dir", "/mnt/cache/reports/x",
            "--config-override", 'data.root="/mnt/cache/data/pdebench"',
            "--config-override", 'checkpoint.dir="/mnt/cache"',
            "--config-override", 'other="/mnt/cachex/not-the-volume"',
            "--config-override", "logging.wandb.enabled=true")
    moved, rewrites = sandbox_spec(spec(command=argv), tmp_path,
                                   metadata_url="http://127.0.0.1:1/i", trainer_user="me")
    host = tmp_path / "mnt/cache"
    assert moved.command == (
        "python", "scripts/run_fast_to_sota.py", "--run-dir", f"{host}/reports/x",
        "--config-override", f'data.root="{host}/data/pdebench"',
        "--config-override", f'checkpoint.dir="{host}"',
        "--config-override", 'other="/mnt/cachex/not-the-volume"',
        "--config-override", "logging.wandb.enabled=false", "--skip-validation")
    assert "command" in {r.field for r in rewrites}
    plain, rewrites = sandbox_spec(spec(command=("python3", "train.py")), tmp_path,
                                   metadata_url="http://127.0.0.1:1/i", trainer_user="me")
    assert plain.command == ("python3", "train.py") and "command" not in {r.field for r in rewrites}
