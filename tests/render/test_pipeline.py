"""render(): every variant passes both validators, carries hostile strings as data, keeps
the secrets in the one root-only file, pins what the launcher uploads, and fits the 16 KiB
user-data limit."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import json
import os

import pytest
from support.keys import ALL_FAKE_KEYS, FAKE_WANDB_KEY

from launcher.errors import ConfigError
from launcher.render import MAX_USER_DATA_BYTES, BootInputs, DocumentError, render
from launcher.render.pipeline import boot_zipapp
from launcher.render.schema import validate_document
from launcher.render.serialise import load_cloud_config
from launcher.runner.boot import BootSpec
from launcher.runner.spec import SECRET_NAMES, CodeSource, HealthSpec, RunSecrets, read_secrets

from .conftest import (
    FAKE_SECRETS,
    FIXED_RUNCMD,
    fake_secrets,
    files_by_path,
    large_runner,
    make_spec,
    parsed,
    tiny_runner,
)

HOSTILE = (
    "; rm -rf /", "$(reboot)", "`id`", "' \" \\", "line one\nline two", "\r\nCRLF", "tab\there",
    "unicode: é 日本語 🚀", "%n %i %%", "${runner}", "#cloud-config", "---", "key: value",
    "- item", "!!python/object/apply:os.system ['id']", "0600", "no", "null", "~", "& | > <",
    " leading and trailing ", "nul\x00byte", "\u2028separator", "*anchor", "@at",
)
LONG = "x" * 1024  # the stage schema's maxLength for a command item or env value


def _variants() -> dict[str, tuple]:
    base = make_spec()
    git = CodeSource(kind="git", git_url="https://github.com/example/train.git",
                     git_commit="0123456789abcdef0123456789abcdef01234567")
    hostile_code = CodeSource(kind="git", git_url="https://example.com/r.git; rm -rf / #'\"",
                              git_commit="HEAD\n$(reboot)")
    return {
        "gpu-tarball": (base, None),
        "cpu-only": (dataclasses.replace(base, health=HealthSpec(cpu_only=True)), None),
        "git-code": (dataclasses.replace(base, code=git), None),
        "keep-volume": (dataclasses.replace(
            base, volume=dataclasses.replace(base.volume, keep_volume=True)), None),
        "hostile": (dataclasses.replace(
            base, command=("python3", "-c", *HOSTILE), code=hostile_code,
            workdir="sub dir/; rm -rf /", env=tuple((f"V{i}", v) for i, v in enumerate(HOSTILE)),
            upload_dirs=HOSTILE[:4]), None),
        "max-length": (dataclasses.replace(
            base, run_id="r" * 63, command=("python3", LONG), env=(("LONG", LONG),),
            storage=dataclasses.replace(base.storage, bucket="b" * 63)), None),
        "tiny-runner": (base, tiny_runner()),
        "large-runner": (base, large_runner()),
    }


VARIANTS = _variants()


def inputs(runner: bytes, **changes) -> BootInputs:
    return BootInputs(runner, **{"delete_volume": True, **changes})


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request, runner_bytes):
    spec, runner = VARIANTS[request.param]
    runner = runner if runner is not None else runner_bytes
    return request.param, spec, runner, render(spec, fake_secrets(), inputs(runner))


def boot_json(document) -> BootSpec:
    return BootSpec.from_json(files_by_path(document)["/etc/launcher/boot.json"]["content"])


def test_every_variant_passes_both_validators(variant, cloud_init_schema):
    _, _, _, document = variant
    validate_document(parsed(document))
    cloud_init_schema(document.text)


def test_every_variant_fits_the_limit_and_reports_its_size(variant):
    _, spec, runner, document = variant
    sizes = document.size_report()
    assert sizes.document_bytes == len(document.text.encode("ascii")) <= MAX_USER_DATA_BYTES
    assert sizes.user_data_b64_bytes == len(document.user_data_b64)
    assert sizes.runner_bytes == len(runner) and sizes.limit_bytes == MAX_USER_DATA_BYTES
    assert sizes.spec_bytes == len(spec.to_json()) + 1
    assert sizes.boot_bytes == len(boot_zipapp()) and sizes.boot_encoding == "gz+b64"
    assert sizes.as_dict()["headroom_bytes"] == MAX_USER_DATA_BYTES - sizes.document_bytes
    assert base64.b64decode(document.user_data_b64).decode("ascii") == document.text


def test_the_document_carries_the_bootstrap_not_the_runner(variant):
    _, _, runner, document = variant
    files = files_by_path(document)
    entry = files["/opt/launcher/boot.pyz"]
    assert gzip.decompress(base64.b64decode(entry["content"])) == boot_zipapp()
    assert (entry["owner"], entry["permissions"]) == ("root:root", "0755")
    assert not {"/opt/launcher/runner.pyz", "/etc/launcher/run.json"} & set(files)
    assert runner not in base64.b64decode(document.user_data_b64)


def test_boot_json_pins_what_the_launcher_uploads(variant):
    _, spec, runner, document = variant
    boot = boot_json(document)
    spec_bytes = (spec.to_json() + "\n").encode()
    assert [u.data for u in document.uploads] == [runner, spec_bytes]
    for upload, pin, path, mode in zip(document.uploads, boot.files,
                                       ("/opt/launcher/runner.pyz", "/etc/launcher/run.json"),
                                       ("0755", "0644"), strict=True):
        assert pin.key == upload.key and pin.sha256 == upload.sha256 == \
            hashlib.sha256(upload.data).hexdigest()
        assert (pin.path, pin.mode, pin.size) == (path, mode, len(upload.data))
        assert pin.key.startswith(f"{spec.run_prefix}/boot/") and upload.sha256[:16] in pin.key
    assert (boot.endpoint_url, boot.bucket, boot.region) == (
        spec.storage.endpoint_url, spec.storage.bucket, "us-west-004")
    assert boot.status_key == f"{spec.run_prefix}/status.json"
    assert (boot.api_url, boot.block_id, boot.secrets_file, boot.metadata_url) == (
        spec.api_url, spec.volume.block_id, spec.paths.secrets_file, spec.metadata_url)
    assert boot.delete_volume is True and boot.run_id == spec.run_id


def test_a_reused_volume_is_never_the_bootstraps_to_delete(runner_bytes):
    document = render(make_spec(), fake_secrets(), inputs(runner_bytes, delete_volume=False))
    assert boot_json(document).delete_volume is False


def test_runcmd_is_only_the_fixed_argv_lists(variant):
    assert parsed(variant[3])["runcmd"] == FIXED_RUNCMD


def test_the_spec_travels_as_data_and_comes_back_exactly(variant):
    _, spec, _, document = variant
    back = json.loads(document.uploads[1].data)
    assert back["command"] == list(spec.command)
    assert back["env"] == [list(pair) for pair in spec.env]
    assert back["code"] == dataclasses.asdict(spec.code)
    assert back["workdir"] == spec.workdir
    assert document.uploads[1].data.decode() == spec.to_json() + "\n"


def test_secrets_live_only_in_the_root_only_file(variant, tmp_path):
    _, _, _, document = variant
    files = files_by_path(document)
    secrets_entry = files.pop("/etc/launcher/secrets.env")
    assert (secrets_entry["owner"], secrets_entry["permissions"]) == ("root:root", "0600")
    env_file = tmp_path / "secrets.env"
    env_file.write_text(secrets_entry["content"])
    assert read_secrets(env_file).values == FAKE_SECRETS
    for key in FAKE_SECRETS.values():
        assert document.text.count(key) == 1  # the one NAME=value line
        for entry in files.values():
            content = entry["content"]
            decoded = base64.b64decode(content) if entry["encoding"] != "text/plain" else b""
            if entry["encoding"] == "gz+b64":
                decoded = gzip.decompress(decoded)
            assert key not in content and key.encode() not in decoded
        assert not any(key.encode() in upload.data for upload in document.uploads)


def test_the_redacted_text_masks_every_secret_and_stays_valid(variant, cloud_init_schema):
    _, _, _, document = variant
    redacted = document.redacted_text()
    assert not any(key in redacted for key in ALL_FAKE_KEYS)
    for name in SECRET_NAMES:
        assert f"{name}=<secret:{name}>" in redacted
    validate_document(load_cloud_config(redacted))
    assert document.text.replace("\n", "") != redacted.replace("\n", "")
    assert not any(key in repr(document) or key in str(document.size_report())
                   for key in ALL_FAKE_KEYS)


def test_hostile_strings_stay_data_in_every_field():
    spec = VARIANTS["hostile"][0]
    back = json.loads(render(spec, fake_secrets(), inputs(tiny_runner())).uploads[1].data)
    assert back["command"][2:] == list(HOSTILE)
    assert [v for _, v in back["env"]] == list(HOSTILE)
    assert back["code"]["git_url"].endswith("rm -rf / #'\"")
    assert back["workdir"] == "sub dir/; rm -rf /"


def test_unset_secrets_are_marked_unset():
    document = render(make_spec(), RunSecrets({"VULTR_KEY": "x" * 32}), inputs(tiny_runner()))
    redacted = document.redacted_text()
    assert "VULTR_KEY=<secret:VULTR_KEY>" in redacted
    assert "B2_APP_KEY=<unset:B2_APP_KEY>" in redacted


def test_a_secret_in_the_spec_is_refused_without_showing_it():
    spec = make_spec(env=(("WANDB_API_KEY", FAKE_WANDB_KEY),))
    with pytest.raises(ConfigError) as raised:
        render(spec, fake_secrets(), inputs(tiny_runner()))
    message = str(raised.value)
    assert "WANDB_API_KEY" in message and "/etc/launcher/run.json" in message
    assert FAKE_WANDB_KEY not in message


def test_a_non_ascii_secret_in_the_spec_is_refused_too():
    secret = "clé-secrète-日本-0123456789"
    spec = make_spec(command=("python3", "-c", f"print({secret!r})"))
    with pytest.raises(ConfigError, match="B2_APP_KEY"):
        render(spec, RunSecrets({"B2_APP_KEY": secret}), inputs(tiny_runner()))


def test_a_document_too_big_even_gzipped_names_its_sizes():
    incompressible = os.urandom(MAX_USER_DATA_BYTES)
    with pytest.raises(DocumentError) as raised:
        render(make_spec(), fake_secrets(), inputs(tiny_runner(), boot=incompressible))
    message = str(raised.value)
    assert f"{MAX_USER_DATA_BYTES:,}-byte" in message and f"{len(incompressible):,}" in message


def test_a_smaller_limit_switches_the_bootstrap_to_gzip():
    boot = large_runner()
    plain = render(make_spec(), fake_secrets(), inputs(tiny_runner(), boot=tiny_runner()))
    assert plain.size_report().boot_encoding == "b64"
    squeezed = render(make_spec(), fake_secrets(), inputs(tiny_runner(), boot=boot),
                      limit=len(boot))
    assert squeezed.size_report().boot_encoding == "gz+b64"
    assert squeezed.size_report().limit_bytes == len(boot)


def test_the_same_inputs_give_the_same_document(runner_bytes):
    first = render(make_spec(), fake_secrets(), inputs(runner_bytes))
    second = render(make_spec(), fake_secrets(), inputs(runner_bytes))
    assert first.text == second.text and first.user_data_b64 == second.user_data_b64


def test_the_document_never_uses_early_disk_modules(variant):
    assert not {"disk_setup", "fs_setup", "mounts", "bootcmd"} & set(parsed(variant[3]))
    assert parsed(variant[3])["package_update"] is False
    assert parsed(variant[3])["package_upgrade"] is False
