"""The container entry point and container-mode phases, piece by piece: secrets from the
environment, the test root, s5cmd by pin, the upload retried until the deadline, and a
failure before the run that destroys the instance."""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from launcher.runner import container
from launcher.runner.container import (
    ContainerFailed,
    ensure_s5cmd,
    place_for_test,
    take_secrets,
    upload_until_deadline,
    write_secrets,
)
from launcher.runner.spec import CONTAINER_SECRET_NAMES, HealthSpec, read_secrets

from .conftest import INSTANCE_ID, SECRET_VALUES, container_secrets, vast_spec
from .stubvast import FAKE_CONTAINER_KEY


def secret_env() -> dict[str, str]:
    return {**container_secrets().values, "VULTR_KEY": "FAKE-vultr-not-here-123",
            "CONTAINER_ID": INSTANCE_ID, "PATH": "/usr/bin:/bin"}


def test_secrets_leave_the_environment_for_a_0600_file(tmp_path):
    secrets, clean = take_secrets(secret_env())
    assert secrets.values == container_secrets().values
    assert clean == {"CONTAINER_ID": INSTANCE_ID, "PATH": "/usr/bin:/bin"}
    path = tmp_path / "etc/launcher/secrets.env"
    write_secrets(str(path), secrets)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_secrets(path, CONTAINER_SECRET_NAMES).values == secrets.values


def test_the_test_root_moves_every_path_and_needs_cpu_only(tmp_path):
    spec = vast_spec(Path("/"))
    env = {container.TEST_ROOT_ENV: str(tmp_path), container.TEST_TRAINER_ENV: "nobody"}
    placed, note = place_for_test(spec, env)
    assert placed.paths.state_dir == str(tmp_path / "state")
    assert placed.volume.mount_point == str(tmp_path / "cache")
    assert placed.paths.trainer_user == "nobody" and note.startswith("TEST CONTAINER:")
    assert place_for_test(spec, {}) == (spec, "")
    with pytest.raises(ContainerFailed, match="health.cpu_only is not"):
        place_for_test(replace(spec, health=HealthSpec()), env)


def test_s5cmd_is_taken_only_with_the_pinned_sha256(tmp_path):
    binary = tmp_path / "s5cmd"
    binary.write_bytes(b"#!/bin/sh\n")
    binary.chmod(0o755)
    sha = hashlib.sha256(binary.read_bytes()).hexdigest()
    lines: list[str] = []
    spec = vast_spec(tmp_path)
    pinned = replace(spec, container=replace(spec.container, s5cmd_sha256=sha))
    env = {"LAUNCHER_S5CMD": str(binary), "PATH": str(tmp_path / "empty")}
    assert ensure_s5cmd(pinned, env, tmp_path, lines.append) == str(binary)
    other = replace(spec, container=replace(spec.container, s5cmd_sha256="0" * 64))
    if not os.access("/usr/local/bin/s5cmd", os.X_OK):
        with pytest.raises(ContainerFailed, match="s5cmd_sha256 pin none to fetch"):
            ensure_s5cmd(other, env, tmp_path, lines.append)


@dataclass
class Result:
    verified: bool
    problems: tuple[str, ...] = ()


def test_an_unverified_upload_is_tried_again_until_it_is_verified(ctx):
    answers = [Result(False, ("AccessDenied",)), Result(False, ("timeout",)), Result(True)]
    got = upload_until_deadline(ctx, None, upload=lambda c, o: answers.pop(0))
    assert got.verified and answers == []
    log = Path(ctx.spec.paths.log_dir, "runner.log").read_text()
    assert "attempt 1 not verified (AccessDenied); again in 0.05s" in log
    assert "attempt 2 not verified (timeout); again in 0.1s" in log


def test_the_upload_stops_trying_before_the_deadline(ctx):
    ctx.spec = replace(ctx.spec, deadline_epoch=time.time() + 0.3)
    calls: list[float] = []

    def upload(c, o):
        calls.append(time.monotonic())
        raise OSError("bucket unreachable")

    assert upload_until_deadline(ctx, None, upload=upload) is None
    assert 2 <= len(calls) <= 8  # tried again, then gave up with the deadline near
    assert "no time left before the deadline" in Path(ctx.spec.paths.log_dir,
                                                      "runner.log").read_text()


def test_a_failure_before_the_run_destroys_the_instance(tmp_path, stub, capsys):
    spec = vast_spec(tmp_path, stub.url)
    spec = replace(spec, health=HealthSpec())  # not cpu_only: the test root is refused
    path = tmp_path / "run.json"
    path.write_text(spec.to_json())
    env = {**secret_env(), "CONTAINER_API_KEY": FAKE_CONTAINER_KEY,
           container.TEST_ROOT_ENV: str(tmp_path)}
    lines: list[str] = []
    assert container.start(str(path), env, lines.append) == 1
    assert stub.deletes() == [f"/api/v0/instances/{INSTANCE_ID}/"]
    assert any("FAILED before the run started" in line for line in lines)
    assert any("destroy accepted" in line for line in lines)
    assert not any(v in line for v in SECRET_VALUES for line in lines)


def test_runner_argv_is_the_zipapp_we_came_from(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/x/runner.pyz", "container"])
    assert container.runner_argv() == [sys.executable, "/x/runner.pyz"]
    monkeypatch.setattr(sys, "argv", ["-m"])
    assert container.runner_argv()[1:] == ["-m", "launcher.runner"]
