"""``launcher doctor``: every check green on a well-set machine, and each failure with its hint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.keys import (
    FAKE_FENCED_KEY,
    FAKE_SELF_DESTRUCT_KEY,
    FAKE_UNKNOWN_KEY,
    FAKE_VULTR_KEY,
)

from launcher.cli import main
from launcher.emulator import catalogue

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SNAPSHOT_ID = catalogue.SNAPSHOTS[0]["id"]


@pytest.fixture
def doctor_env(cli_env, monkeypatch):
    """A well-set machine: the key of a service user with just the ACLs a launch needs, and
    a self-destruct user's key that works from any address."""
    cli_env.state.account["acls"] = ["provisioning", "subscriptions_view"]
    cli_env.add_key(FAKE_SELF_DESTRUCT_KEY, "self-destruct")
    cli_env.add_key(FAKE_FENCED_KEY, "fenced", allowed_ips=["203.0.113.7"])
    monkeypatch.setenv("VULTR_SELF_DESTRUCT_KEY", FAKE_SELF_DESTRUCT_KEY)
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
        "configuration": "ok", "env file": "ok", "s5cmd": "ok", "Vultr key": "ok",
        "key permissions": "ok", "instance key": "ok", "snapshot": "ok", "GPU stock": "ok",
        "bucket": "ok"}
    assert SNAPSHOT_ID in checks["snapshot"]["detail"]
    assert main(["doctor", "--stage", "smoke"]) == 0
    out = capsys.readouterr().out
    assert out.count("✔") == 9 and "✘" not in out


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


def test_a_missing_snapshot(doctor_env, capsys):
    doctor_env.state.delete_snapshot(SNAPSHOT_ID)
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


# -- the key the instance deletes itself with ------------------------------------------------

def test_a_good_self_destruct_key_is_read_with_and_the_rest_is_said(doctor_env, capsys):
    code, checks = doctor(capsys)
    instance = checks["instance key"]
    assert code == 0 and instance["status"] == "ok"
    assert "VULTR_SELF_DESTRUCT_KEY answered GET /blocks?per_page=1 and GET " \
        "/instances?per_page=1" in instance["detail"]
    assert "cannot prove that it may detach and delete" in instance["detail"]
    assert "allowlist admits the instance's future address" in instance["detail"]
    used = [(e.method, e.route, e.query) for e in doctor_env.events if e.key == "self-destruct"]
    assert used == [("GET", "/blocks", {"per_page": "1"}),
                    ("GET", "/instances", {"per_page": "1"})]
    assert doctor_env.mutations() == []


@pytest.mark.parametrize(("key", "answer"), [
    (FAKE_UNKNOWN_KEY, "Invalid API token."),
    (FAKE_FENCED_KEY, "Unauthorized IP address: 127.0.0.1"),
])
def test_a_refused_self_destruct_key_fails_naming_it(doctor_env, capsys, monkeypatch, key,
                                                      answer):
    monkeypatch.setenv("VULTR_SELF_DESTRUCT_KEY", key)
    code, checks = doctor(capsys)
    instance = checks["instance key"]
    assert code == 1 and instance["status"] == "fail"
    assert checks["Vultr key"]["status"] == "ok"  # the launcher's own key is fine
    for part in ("VULTR_SELF_DESTRUCT_KEY", "HTTP 401", answer, "wrong, expired",
                 "allow all"):
        assert part in instance["detail"], part
    assert "\n" not in instance["detail"] and "docs/security.md" in instance["hint"]


def test_without_a_self_destruct_key_the_launchers_key_travels_a_warning(doctor_env, capsys,
                                                                        monkeypatch):
    monkeypatch.delenv("VULTR_SELF_DESTRUCT_KEY")
    code, checks = doctor(capsys)
    instance = checks["instance key"]
    assert code == 0 and instance["status"] == "warn"
    assert "VULTR_SELF_DESTRUCT_KEY is not set" in instance["detail"]
    assert "(VULTR_KEY) travels to every instance" in instance["detail"]
    assert "VULTR_SELF_DESTRUCT_KEY" in instance["hint"] and "allow all" in instance["hint"]


# -- --prove-self-destruct --------------------------------------------------------------------

def block_bodies(emulator) -> list[dict]:
    """The bodies of every POST /blocks from here on."""
    bodies: list[dict] = []
    emulator.add_listener(lambda x: bodies.append(json.loads(x.request_body))
                          if (x.method, x.route) == ("POST", "/blocks") else None)
    return bodies


def mutations(emulator) -> list[tuple[str, str, str | None, int | None]]:
    return [(e.method, e.route, e.key, e.status) for e in emulator.events if e.mutating]


def test_the_proof_creates_and_deletes_one_40_gb_volume_with_the_instance_key(doctor_env,
                                                                             capsys):
    bodies = block_bodies(doctor_env)
    code, checks = doctor(capsys, "--prove-self-destruct")
    proof = checks["self-destruct proof"]
    assert code == 0 and proof["status"] == "ok", proof
    assert [(b["size_gb"], b["block_type"], b["region"]) for b in bodies] == [
        (40, "storage_opt", "sjc")]
    assert bodies[0]["label"].startswith("launcher-probe-")
    assert bodies[0]["label"].endswith("-cache")
    assert mutations(doctor_env) == [("POST", "/blocks", "self-destruct", 202),
                                     ("DELETE", "/blocks/{id}", "self-destruct", 204)]
    assert doctor_env.state.list_blocks() == []
    assert "under one cent" in proof["detail"] and "$0.0014" in proof["detail"]
    assert "allowlist admits the instance's own address" in proof["detail"]


def test_a_refused_delete_is_cleaned_up_with_the_launchers_key(doctor_env, capsys):
    doctor_env.inject("DELETE /blocks/{id}", "refuse", status=401, error="unauthorized")
    code, checks = doctor(capsys, "--prove-self-destruct", "--region", "ewr")
    proof = checks["self-destruct proof"]
    assert code == 1 and proof["status"] == "fail"
    assert "VULTR_SELF_DESTRUCT_KEY created volume" in proof["detail"]
    assert "could not delete it" in proof["detail"] and "HTTP 401" in proof["detail"]
    assert "with VULTR_KEY instead" in proof["detail"] and "LEFT" not in proof["detail"]
    assert "provisioning ACL" in proof["hint"]
    assert mutations(doctor_env) == [("POST", "/blocks", "self-destruct", 202),
                                     ("DELETE", "/blocks/{id}", "self-destruct", 401),
                                     ("DELETE", "/blocks/{id}", "main", 204)]
    assert doctor_env.state.list_blocks() == []


def test_what_neither_key_can_delete_is_named_with_its_command(doctor_env, capsys):
    doctor_env.inject("DELETE /blocks/{id}", "refuse", count=2, status=401,
                      error="unauthorized")
    code, checks = doctor(capsys, "--prove-self-destruct")
    detail = checks["self-destruct proof"]["detail"]
    [left] = doctor_env.state.list_blocks()
    assert code == 1 and f"LEFT: volume {left.id} (40 GB storage_opt in sjc" in detail
    assert (f'curl -X DELETE -H "Authorization: Bearer $VULTR_KEY" {doctor_env.url}'
            f"/blocks/{left.id}") in detail


def test_a_refused_create_leaves_nothing(doctor_env, capsys):
    doctor_env.inject("POST /blocks", "refuse", status=403, error="unauthorized")
    code, checks = doctor(capsys, "--prove-self-destruct")
    detail = checks["self-destruct proof"]["detail"]
    assert code == 1 and "could not create the probe volume" in detail
    assert "HTTP 403" in detail and "nothing was created, nothing is left" in detail
    assert doctor_env.state.list_blocks() == []


def test_no_proof_with_a_refused_key_or_without_block_storage(doctor_env, capsys,
                                                             monkeypatch):
    monkeypatch.setenv("VULTR_SELF_DESTRUCT_KEY", FAKE_FENCED_KEY)
    code, checks = doctor(capsys, "--prove-self-destruct")
    assert code == 1 and checks["self-destruct proof"]["status"] == "skip"
    assert doctor_env.mutations() == []
    monkeypatch.setenv("VULTR_SELF_DESTRUCT_KEY", FAKE_SELF_DESTRUCT_KEY)
    code, checks = doctor(capsys, "--prove-self-destruct", "--region", "nrt")
    assert code == 1 and "no block storage in nrt" in checks["self-destruct proof"]["detail"]
    assert doctor_env.mutations() == []
    assert main(["doctor", "--region", "ewr"]) == 2
    assert "--prove-self-destruct" in capsys.readouterr().err


def test_without_a_self_destruct_key_the_proof_uses_the_launchers_key(doctor_env, capsys,
                                                                     monkeypatch):
    monkeypatch.delenv("VULTR_SELF_DESTRUCT_KEY")
    code, checks = doctor(capsys, "--prove-self-destruct")
    assert code == 0 and "VULTR_KEY created volume" in checks["self-destruct proof"]["detail"]
    assert {e.key for e in doctor_env.events if e.mutating} == {"main"}
    assert FAKE_VULTR_KEY not in json.dumps(checks)
