"""``launcher doctor``: every check green on a well-set machine, and each failure with its hint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launcher.cli import main
from launcher.emulator import catalogue

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SNAPSHOT_ID = catalogue.SNAPSHOTS[0]["id"]


@pytest.fixture
def doctor_env(cli_env, monkeypatch):
    """A well-set machine: the key of a service user with just the ACLs a launch needs."""
    cli_env.state.account["acls"] = ["provisioning", "subscriptions_view"]
    monkeypatch.setenv("LAUNCHER_CONFIG_DIR", str(CONFIGS))
    return cli_env


def doctor(capsys, *args: str) -> tuple[int, dict[str, dict]]:
    code = main(["doctor", "--json", *args])
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] == (code == 0)
    return code, {c["name"]: c for c in data["checks"]}


def test_all_green(doctor_env, capsys, monkeypatch):
    code, checks = doctor(capsys)
    assert code == 0
    assert {name: c["status"] for name, c in checks.items()} == {
        "configuration": "ok", "s5cmd": "ok", "Vultr key": "ok", "key permissions": "ok",
        "snapshot": "ok", "GPU stock": "ok", "bucket": "ok"}
    assert SNAPSHOT_ID in checks["snapshot"]["detail"]
    assert main(["doctor", "--stage", "smoke"]) == 0
    out = capsys.readouterr().out
    assert out.count("✔") == 7 and "✘" not in out


def test_a_refused_key_gets_the_allowlist_hint(doctor_env, capsys, monkeypatch):
    monkeypatch.setenv("VULTR_KEY", "not-the-key-0001")
    code, checks = doctor(capsys)
    assert code == 1
    assert checks["Vultr key"]["status"] == "fail"
    assert "allowlist" in checks["Vultr key"]["hint"]
    assert checks["snapshot"]["status"] == checks["key permissions"]["status"] == "skip"
    assert checks["GPU stock"]["status"] == "ok"  # public endpoints need no key


def test_a_powerful_key_is_a_warning_naming_the_service_user(cli_env, capsys, monkeypatch):
    monkeypatch.setenv("LAUNCHER_CONFIG_DIR", str(CONFIGS))
    code, checks = doctor(capsys)  # the emulator's default: the owner's key, every ACL
    acl = checks["key permissions"]
    assert code == 0 and acl["status"] == "warn"
    assert "manage_users" in acl["detail"] and "launcher-service" in acl["hint"]
    assert "no manage_servers" in acl["hint"]


def test_a_missing_snapshot(doctor_env, client, capsys):
    client.delete_snapshot(SNAPSHOT_ID)
    code, checks = doctor(capsys)
    assert code == 1 and checks["snapshot"]["status"] == "fail"
    assert "launcher-gpu-" in checks["snapshot"]["detail"]


def test_a_bucket_that_refuses_the_key(doctor_env, capsys, monkeypatch):
    monkeypatch.setenv("B2_APPLICATION_KEY", "wrong-secret-0001")
    code, checks = doctor(capsys)
    assert code == 1 and checks["bucket"]["status"] == "fail"
    assert "master key" in checks["bucket"]["hint"]
    assert "wrong-secret" not in json.dumps(checks)


def test_no_stock_names_the_closest_offers(doctor_env, capsys):
    for region in ("sjc", "sea", "lax"):
        doctor_env.set_stock(region, [])
    code, checks = doctor(capsys, "--stage", "smoke")
    stock = checks["GPU stock"]
    assert code == 1 and stock["status"] == "fail"
    assert "no offer fits" in stock["detail"] and "not in stock in sjc" in stock["detail"]
    assert "launcher offers --stage smoke --all" in stock["hint"]


def test_missing_s5cmd_and_missing_configs(doctor_env, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("LAUNCHER_S5CMD", str(tmp_path / "no-s5cmd"))
    monkeypatch.setenv("LAUNCHER_CONFIG_DIR", str(tmp_path / "nowhere"))
    code, checks = doctor(capsys)
    assert code == 1
    assert checks["s5cmd"]["status"] == checks["configuration"]["status"] == "fail"
    assert checks["snapshot"]["status"] == "ok"  # the defaults: latest launcher-gpu-*
