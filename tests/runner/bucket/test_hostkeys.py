"""The SSH host keys go to the bucket early in the run; missing keys or a refused upload are
notes, never the run's failure."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from support.clock import FakeClock
from support.sshkeys import ed25519_public

from launcher.runner import hostkeys
from launcher.runner.hostkeys import HostKeyOptions
from launcher.runner.spec import RunSecrets

from .conftest import READER_ID, READER_SECRET, listing, make_context, secret_free

ED25519 = ed25519_public("host-ed25519", comment="root@vultr-guest")
ECDSA = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTY= root@vultr-guest"


@pytest.fixture(scope="module")
def shared_bucket(s3_server) -> str:
    name = f"hk-{uuid.uuid4().hex[:12]}"
    s3_server.s5("mb", f"s3://{name}")
    return name


@pytest.fixture
def ctx(tmp_path, s3_server, shared_bucket):
    return make_context(tmp_path, s3_server, shared_bucket, run_id=f"r-{uuid.uuid4().hex[:10]}")


def ssh_dir(tmp_path: Path, **files: str) -> Path:
    target = tmp_path / "etc/ssh"
    target.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (target / f"ssh_host_{name}_key.pub").write_text(text + "\n")
    return target


def published(server, ctx, tmp_path) -> str | None:
    key = f"{ctx.spec.run_prefix}/ssh_host_keys.pub"
    if key not in listing(server, ctx.spec.storage.bucket, key):
        return None
    target = tmp_path / "fetched.pub"
    server.s5("cp", f"s3://{ctx.spec.storage.bucket}/{key}", str(target))
    return target.read_text()


def status_notes(ctx) -> list[str]:
    return json.loads(Path(ctx.spec.paths.state_dir, "status.json").read_text())["notes"]


def test_the_host_keys_reach_the_bucket_without_comments(ctx, tmp_path, s3_server):
    keys = ssh_dir(tmp_path, ed25519=ED25519, ecdsa=ECDSA, rsa="-----BEGIN nonsense")
    (keys / "ssh_host_dsa_key.pub").symlink_to(keys / "ssh_host_ed25519_key.pub")
    assert hostkeys.publish(ctx, HostKeyOptions(ssh_dir=keys)) is True
    assert published(s3_server, ctx, tmp_path) == (
        f"{ECDSA.rsplit(' ', 1)[0]}\n{ED25519.rsplit(' ', 1)[0]}\n")
    assert "ssh: published 2 host key(s)" in Path(ctx.spec.paths.log_dir,
                                                 "runner.log").read_text()


def test_keys_written_during_the_wait_are_published(ctx, tmp_path, s3_server):
    keys = ssh_dir(tmp_path)
    time = FakeClock([lambda: None, lambda: ssh_dir(tmp_path, ed25519=ED25519)])
    ctx.sleep, ctx.clock = time.sleep, lambda: time.now
    assert hostkeys.publish(ctx, HostKeyOptions(ssh_dir=keys)) is True
    assert time.sleeps == [0.5, 1.0]
    assert published(s3_server, ctx, tmp_path) == ED25519.rsplit(" ", 1)[0] + "\n"


def test_no_host_keys_is_a_note_after_a_bounded_wait_with_backoff(ctx, tmp_path, s3_server):
    time = FakeClock()
    ctx.sleep, ctx.clock = time.sleep, lambda: time.now
    assert hostkeys.publish(ctx, HostKeyOptions(ssh_dir=tmp_path / "absent")) is False
    assert time.sleeps == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0, 2.5]  # 30 s in all
    assert any("no host keys" in n and "`launcher ssh` refuses" in n for n in status_notes(ctx))
    assert published(s3_server, ctx, tmp_path) is None


def test_a_refused_upload_is_a_scrubbed_note_not_an_error(tmp_path, s3_server, shared_bucket):
    reader = RunSecrets({"B2_KEY_ID": READER_ID, "B2_APP_KEY": READER_SECRET})
    ctx = make_context(tmp_path, s3_server, shared_bucket, secrets=reader)
    keys = ssh_dir(tmp_path, ed25519=ED25519)
    assert hostkeys.publish(ctx, HostKeyOptions(ssh_dir=keys)) is False
    notes = " ".join(status_notes(ctx))
    assert "host keys not published" in notes and "AccessDenied" in notes
    assert READER_SECRET not in notes and secret_free(notes)
