"""The stage's SSH key: planned read-only, registered once (named by its fingerprint) by the
reconcile, reused whatever its name, listed by the dry run, never rolled back."""

from __future__ import annotations

import json

import pytest
from support.sshkeys import ed25519_public

from launcher.errors import ConfigError, TransientError
from launcher.provision import DryRunResult, LaunchResult, plan_launch, run_stage
from launcher.sshkeys import PublicKey

SEEDED = 2  # the emulator's account starts with two keys (laptop, ci)


def with_key(bed, text: str) -> PublicKey | None:
    """Point ``access.ssh_public_key`` of the bed's ``launcher.yaml`` at a file holding
    ``text``; the key it holds (None when it is no key)."""
    path = bed.tmp / "id_ed25519.pub"
    path.write_text(text + "\n")
    defaults = bed.config_dir / "launcher.yaml"
    defaults.write_text(defaults.read_text() + f"access: {{ssh_public_key: '{path}'}}\n")
    try:
        return PublicKey.parse(text)
    except ValueError:
        return None


def posts(bed, route: str) -> int:
    return sum(1 for e in bed.emulator.mutations() if (e.method, e.route) == ("POST", route))


def instance_keys(bed, result: LaunchResult) -> tuple[str, ...]:
    """The ``sshkey_id`` the instance's create sent, as the emulator received it."""
    bodies = [json.loads(x.request_body) for x in bed.sent
              if (x.method, x.route, x.status) == ("POST", "/instances", 202)]
    mine = [b for b in bodies if b["label"] == result.run_id]
    return tuple(mine[-1].get("sshkey_id", ()))


@pytest.fixture
def quick_bed(quick_bed):
    """The quick bed, keeping every exchange the emulator answered in ``sent``."""
    quick_bed.sent = []
    quick_bed.emulator.add_listener(quick_bed.sent.append)
    return quick_bed


def test_without_a_key_nothing_is_registered_or_attached(quick_bed):
    assert plan_launch(quick_bed.request(), quick_bed.deps()).ssh_key is None
    result = run_stage(quick_bed.request(), quick_bed.deps())
    assert instance_keys(quick_bed, result) == ()
    assert posts(quick_bed, "/ssh-keys") == 0


def test_a_new_key_is_registered_once_under_its_fingerprint_and_attached(quick_bed):
    key = with_key(quick_bed, ed25519_public("operator"))
    deps = quick_bed.deps()
    plan = plan_launch(quick_bed.request(), deps)
    assert plan.ssh_key is not None and plan.ssh_key.must_register
    assert posts(quick_bed, "/ssh-keys") == 0  # planning is read-only
    assert plan.ssh_key.name == key.account_name and key.account_name.startswith("launcher-")
    assert len(key.account_name) == len("launcher-") + 16

    first = run_stage(quick_bed.request(), deps)
    keys = quick_bed.emulator.state.ssh_keys
    assert len(keys) == SEEDED + 1
    registered = next(k for k in keys.values() if k.name == key.account_name)
    assert registered.ssh_key == f"{key.line} me@laptop"
    assert instance_keys(quick_bed, first) == (registered.id,)
    assert f"SSH key {registered.id} ({key.account_name})" in first.created
    assert "an account key, not a run resource" in deps.progress.text

    again = run_stage(quick_bed.request(run_id="smoke-20261118-120000"), quick_bed.deps())
    assert instance_keys(quick_bed, again) == (registered.id,)
    assert posts(quick_bed, "/ssh-keys") == 1  # the second launch reuses it
    assert any(r.startswith(f"SSH key {registered.id}") for r in again.reused)


def test_a_key_the_account_has_under_another_name_is_reused(quick_bed):
    text = ed25519_public("mine", comment="someone@desk")
    key = with_key(quick_bed, text)
    existing = quick_bed.emulator.state.create_ssh_key("my laptop", f"{key.line} other-comment")
    result = run_stage(quick_bed.request(), quick_bed.deps())
    assert instance_keys(quick_bed, result) == (existing.id,)
    assert posts(quick_bed, "/ssh-keys") == 0


def test_an_ambiguous_registration_buys_no_duplicate(quick_bed):
    key = with_key(quick_bed, ed25519_public("flaky"))
    quick_bed.emulator.inject("POST /ssh-keys", "ambiguous_create")
    result = run_stage(quick_bed.request(), quick_bed.deps())
    named = [k for k in quick_bed.emulator.state.ssh_keys.values() if k.name == key.account_name]
    assert len(named) == 1 and instance_keys(quick_bed, result) == (named[0].id,)


def test_the_dry_run_lists_the_registration_and_makes_it_not(quick_bed):
    key = with_key(quick_bed, ed25519_public("dry"))
    result = run_stage(quick_bed.request(dry_run=True), quick_bed.deps())
    assert isinstance(result, DryRunResult)
    assert quick_bed.emulator.mutations() == []
    calls = [(c.method, c.target) for c in result.calls]
    # after the instance key's two reads and the upload
    assert calls[3:5] == [("POST", "/ssh-keys"), ("POST", "/blocks")]
    register = result.calls[3]
    assert register.body == {"name": key.account_name, "ssh_key": f"{key.line} me@laptop"}
    create = next(c for c in result.calls if c.target == "/instances")
    assert create.body["sshkey_id"] == ["<new-ssh-key-id>"]
    assert result.as_dict()["plan"]["ssh_key"]["action"] == "register"


def test_a_failed_launch_rolls_back_its_resources_but_keeps_the_account_key(quick_bed):
    key = with_key(quick_bed, ed25519_public("kept"))
    quick_bed.emulator.inject("POST /instances", "503", count=5)
    deps = quick_bed.deps()
    with pytest.raises(TransientError):
        run_stage(quick_bed.request(), deps)
    assert quick_bed.left() == ([], [])
    assert [k.name for k in quick_bed.emulator.state.ssh_keys.values()][-1] == key.account_name
    assert f"SSH key {key.account_name}" in deps.progress.text
    assert "stays in the account" in deps.progress.text


def test_a_file_that_holds_no_key_stops_the_plan(quick_bed):
    assert with_key(quick_bed, "ssh-ed25519 AAAAC3Nza me@example") is None
    with pytest.raises(ConfigError, match="access.ssh_public_key .*not base64"):
        run_stage(quick_bed.request(), quick_bed.deps())
    assert quick_bed.emulator.mutations() == []


def test_the_dry_run_command_shows_the_key_and_the_call(quick_bed, monkeypatch, capsys):
    import launcher.commands.run as run_command
    from launcher.cli import main

    key = with_key(quick_bed, ed25519_public("printed"))

    def deps(account, confirm, progress, environ=None):
        made = quick_bed.deps(confirm=confirm)
        made.progress = progress
        return made

    monkeypatch.setattr(run_command, "real_deps", deps)
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["run", "--stage", "smoke", "--config-dir", str(quick_bed.config_dir),
                 "--code-dir", str(quick_bed.code_dir), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"SSH key: {quick_bed.tmp / 'id_ed25519.pub'} {key.fingerprint}: register it as " \
           f"{key.account_name}" in out
    assert f'POST /ssh-keys {{"name": "{key.account_name}", "ssh_key": "{key.line}' in out
    assert quick_bed.emulator.mutations() == []


def test_a_key_file_gone_since_the_config_was_read_is_named(tmp_path):
    from launcher.provision.sshkey import read_public_key

    with pytest.raises(ConfigError, match=r"access.ssh_public_key .*absent.pub: not found"):
        read_public_key(str(tmp_path / "absent.pub"))
