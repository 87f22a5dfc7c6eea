"""Issue 14: ``doctor`` against an API that does not answer (point 6) and with a ``.env`` file
other users can read (point 12)."""

from __future__ import annotations

import json
import time

import pytest
from conftest import client_for
from support.keys import FAKE_VULTR_KEY
from support.stalls import silent_server

from launcher.cli import main
from launcher.commands import runcommon
from launcher.vultr import RetryPolicy, Timeouts

QUICK = {"timeouts": Timeouts(connect=1, read=0.3),
         "policy": RetryPolicy(max_attempts=2, base_delay=0.01, deadline_s=5)}


def doctor_checks(capsys) -> tuple[int, dict[str, dict]]:
    code = main(["doctor", "--json"])
    return code, {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}


@pytest.mark.timeout(60)
def test_an_api_that_does_not_answer_is_asked_once_not_by_every_check(cli_env, capsys,
                                                                       monkeypatch):
    with silent_server() as port:
        url = f"http://127.0.0.1:{port}/v2"
        monkeypatch.setenv("VULTR_API_URL", url)
        monkeypatch.setattr(runcommon, "vultr_client",
                            lambda account: client_for(url, FAKE_VULTR_KEY, **QUICK))
        started = time.monotonic()
        code, checks = doctor_checks(capsys)
    assert time.monotonic() - started < 15  # one call's deadline, not one per check
    assert code == 1
    key = checks["Vultr key"]
    assert key["status"] == "fail"
    assert f"read timeout talking to 127.0.0.1:{port} after 2 attempts" in key["detail"]
    for name in ("key permissions", "instance key", "snapshot", "GPU stock"):
        assert checks[name]["status"] == "skip", name
        assert "the Vultr API did not answer" in checks[name]["detail"]


def test_an_env_file_others_can_read_is_a_warning_with_the_chmod(cli_env, capsys, tmp_path,
                                                                 monkeypatch):
    env = tmp_path / "keys.env"
    env.write_text("WANDB_PROJECT=p\n")
    env.chmod(0o644)
    monkeypatch.setenv("LAUNCHER_ENV_FILE", str(env))
    _, checks = doctor_checks(capsys)
    assert checks["env file"] == {
        "name": "env file", "status": "warn",
        "detail": f"{env} can be read or changed by other users (mode 0644) and holds keys",
        "hint": f"chmod 600 {env}"}
    env.chmod(0o600)
    _, checks = doctor_checks(capsys)
    assert checks["env file"]["status"] == "ok"
