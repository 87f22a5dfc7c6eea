"""Bad input and an unreachable bucket stop a launch before anything exists; the dry run
makes no mutating call; the command line end to end."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from support.keys import (
    ALL_FAKE_KEYS,
    FAKE_FENCED_KEY,
    FAKE_SELF_DESTRUCT_KEY,
    FAKE_UNKNOWN_KEY,
)

import launcher.commands.run as run_command
from launcher.cli import main
from launcher.config import Overrides
from launcher.errors import ApiError, ConfigError
from launcher.provision import DryRunResult, LaunchCancelledError, run_stage
from launcher.provision.preflight import InstanceKeyError

from .conftest import account_for, closed_port

SNAPSHOT = "5f0d2c1e-8a3b-4c6d-9e7f-0a1b2c3d4e5f"


def untouched(bed) -> None:
    assert bed.emulator.mutations() == []
    assert bed.objects() == {}


# -- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize(("changes", "account_env", "match"), [
    ({"stage": "nope"}, {}, "nope"),
    ({"overrides": Overrides(regions=("xyz",))}, {}, "unknown region"),
    ({"overrides": Overrides(min_vram_gb=0)}, {}, "--min-vram"),
    ({"overrides": Overrides(snapshot="0d0d0d0d-0000-4000-8000-000000000000")}, {},
     "no such snapshot"),
    ({"overrides": Overrides(max_price_per_hour=0.5)}, {}, "no offer fits"),
    ({"run_id": "Not A Run"}, {}, "--run-id"),
    ({}, {"VULTR_KEY": ""}, "VULTR_KEY"),
    ({}, {"B2_APPLICATION_KEY": ""}, "B2_APPLICATION_KEY"),
    ({}, {"B2_BUCKET": ""}, "placeholder"),
])
def test_bad_input_is_one_clear_error_and_nothing_is_created(bed, changes, account_env,
                                                             match):
    account = account_for(bed.emulator, bed.bucket, bed.tmp, **account_env)
    request = bed.request(**{k: v for k, v in changes.items() if k == "stage"})
    request = bed.request(stage=request.stage,
                          **{k: v for k, v in changes.items() if k != "stage"})
    with pytest.raises(Exception, match=match) as failed:
        run_stage(request, bed.deps(account=account))
    assert "\n" not in str(failed.value).split("hint:")[0].strip() or "no offer" in match
    untouched(bed)


def test_latest_skips_a_snapshot_still_in_progress_and_a_pinned_one_is_refused(bed):
    from launcher.emulator import Timing
    from launcher.emulator.state import InstanceSpec
    from launcher.provision import plan_launch

    store = bed.emulator.state
    store.timing = Timing(snapshot_complete_s=3600)  # snapshots now take an hour
    source = store.create_instance(InstanceSpec(region="sea", plan="vc2-1c-1gb", label="x",
                                                os_id=2136))
    baking = store.create_snapshot(source.id, "launcher-gpu-newer-still-baking")
    store.delete_instance(source.id)
    deps = bed.deps()
    assert plan_launch(bed.request(), deps).snapshot.id == SNAPSHOT
    with pytest.raises(ConfigError, match="not complete"):
        run_stage(bed.request(overrides=Overrides(snapshot=baking.id)), deps)


def test_a_secret_in_the_command_is_refused_before_anything_exists(bed):
    from support.keys import FAKE_WANDB_KEY

    leaky = Overrides(command=("python3", "train.py", "--key", FAKE_WANDB_KEY))
    with pytest.raises(ConfigError, match="WANDB_API_KEY value appears") as failed:
        run_stage(bed.request(overrides=leaky), bed.deps())
    assert FAKE_WANDB_KEY not in str(failed.value)
    untouched(bed)


def test_a_code_directory_that_is_no_checkout_stops_before_any_create(bed, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ConfigError, match="git"):
        run_stage(bed.request(code_dir=plain), bed.deps())
    untouched(bed)


def test_an_unreachable_bucket_stops_before_any_create(bed):
    deps = bed.deps(endpoint=f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(ApiError, match="cannot reach .*nothing was created"):
        run_stage(bed.request(), deps)
    untouched(bed)


def test_a_declined_plan_creates_nothing(bed):
    with pytest.raises(LaunchCancelledError):
        run_stage(bed.request(), bed.deps(confirm=lambda plan: False))
    untouched(bed)


# -- the key the instance deletes itself with ------------------------------------------------

def with_instance_key(bed, key: str):
    """The bed's deps with VULTR_SELF_DESTRUCT_KEY set to ``key`` (the emulator accepts
    FAKE_SELF_DESTRUCT_KEY from anywhere, FAKE_FENCED_KEY only from another address)."""
    bed.emulator.add_key(FAKE_SELF_DESTRUCT_KEY, "self-destruct")
    bed.emulator.add_key(FAKE_FENCED_KEY, "fenced", allowed_ips=["203.0.113.7"])
    return account_for(bed.emulator, bed.bucket, bed.tmp, VULTR_SELF_DESTRUCT_KEY=key)


@pytest.mark.parametrize(("key", "answer"), [
    (FAKE_UNKNOWN_KEY, "Invalid API token."),
    (FAKE_FENCED_KEY, "Unauthorized IP address: 127.0.0.1"),
])
def test_a_refused_instance_key_stops_the_launch_before_anything_exists(quick_bed, key,
                                                                        answer):
    account = with_instance_key(quick_bed, key)
    deps = quick_bed.deps(account=account, confirm=lambda plan: pytest.fail("not asked"))
    with pytest.raises(InstanceKeyError) as refused:
        run_stage(quick_bed.request(), deps)
    text = str(refused.value)
    for part in ("not launched, nothing was created", "VULTR_SELF_DESTRUCT_KEY", "HTTP 401",
                 answer, "allow all"):
        assert part in text, part
    assert "\n" not in text and refused.value.exit_code == 2
    assert quick_bed.emulator.mutations() == [] and quick_bed.left() == ([], [])


def test_a_good_instance_key_costs_two_reads_and_the_launch_goes_on(quick_bed):
    account = with_instance_key(quick_bed, FAKE_SELF_DESTRUCT_KEY)
    result = run_stage(quick_bed.request(), quick_bed.deps(account=account))
    assert result.instance.id in quick_bed.left()[0]
    used = [(e.method, e.route, e.query) for e in quick_bed.emulator.events
            if e.key == "self-destruct"]
    assert used == [("GET", "/blocks", {"per_page": "1"}),
                    ("GET", "/instances", {"per_page": "1"})]


def test_a_dry_run_lists_the_key_proof_and_does_not_make_it(quick_bed):
    account = with_instance_key(quick_bed, FAKE_FENCED_KEY)
    result = run_stage(quick_bed.request(dry_run=True), quick_bed.deps(account=account))
    assert [c.target for c in result.calls[:2]] == ["/blocks?per_page=1",
                                                    "/instances?per_page=1"]
    assert "with VULTR_SELF_DESTRUCT_KEY" in result.calls[0].note
    assert not any(e.key == "fenced" or e.status == 401 for e in quick_bed.emulator.events)


# -- dry run --------------------------------------------------------------------------------

def test_a_dry_run_lists_the_calls_and_makes_none(bed):
    deps = bed.deps(confirm=lambda plan: pytest.fail("a dry run asks nothing"))
    result = run_stage(bed.request(dry_run=True), deps)
    assert isinstance(result, DryRunResult)
    untouched(bed)
    run = f"s3://{bed.bucket}/runs/{result.plan.run_id}"
    boot = re.compile(r"-[0-9a-f]{16}\.(pyz|json)$")
    assert [(c.method, boot.sub("", c.target)) for c in result.calls] == [
        ("GET", "/blocks?per_page=1"), ("GET", "/instances?per_page=1"),
        ("PUT", f"{run}/code.tar.gz"), ("POST", "/blocks"), ("PUT", f"{run}/boot/runner"),
        ("PUT", f"{run}/boot/run"), ("POST", "/instances"),
        ("POST", "/blocks/<new-volume-id>/attach")]
    assert "with VULTR_KEY, the key the instance deletes itself with" in result.calls[0].note
    assert "not called in a dry run" in result.calls[1].note
    create = result.calls[6].body
    assert create["user_data"].startswith("<rendered document, ")
    assert create["snapshot_id"] == SNAPSHOT and "launcher" in create["tags"]
    assert result.calls[2].body["sha256"] == result.code.sha256
    spec_sha = hashlib.sha256(result.spec.encode()).hexdigest()
    assert result.calls[5].body["sha256"] == spec_sha and spec_sha in result.document
    assert "<secret:VULTR_KEY>" in result.document and "<new-mount-id>" in result.spec
    text = json.dumps(result.as_dict())
    assert not any(key in text for key in ALL_FAKE_KEYS)


# -- the command line -----------------------------------------------------------------------

@pytest.fixture
def cli(bed, monkeypatch):
    """``launcher run`` with the bed's collaborators instead of the real ones."""

    def deps(account, confirm, progress, environ=None):
        made = bed.deps(confirm=confirm)
        made.progress = progress
        return made

    monkeypatch.setattr(run_command, "real_deps", deps)
    return ["run", "--stage", "smoke", "--config-dir", str(bed.config_dir),
            "--code-dir", str(bed.code_dir)]


def test_the_dry_run_command_prints_calls_estimate_and_masked_document(bed, cli, capsys):
    assert main([*cli, "--dry-run"]) == 0
    out = capsys.readouterr()
    untouched(bed)
    for marker in ("POST /instances", "POST /blocks", "<rendered document, ", "worst case",
                   "<secret:VULTR_KEY>", "<secret:B2_APP_KEY>", "<secret:WANDB_API_KEY>",
                   "#cloud-config", "nothing was created or uploaded"):
        assert marker in out.out, marker
    assert not any(key in out.out + out.err for key in ALL_FAKE_KEYS)


def test_without_a_terminal_the_command_wants_yes(bed, cli, capsys):
    assert main(cli) == 2
    err = capsys.readouterr().err
    assert "--yes" in err and "Traceback" not in err
    untouched(bed)


def test_the_command_launches_and_prints_json_only(bed, cli, capsys):
    assert main([*cli, "--yes", "--json"]) == 0
    out = capsys.readouterr()
    result = json.loads(out.out)
    assert result["status"] == "launched" and result["instance"]["region"] == "sjc"
    assert f"launcher logs {result['run_id']} --follow" in result["follow"]
    assert "created volume" in out.err


def test_the_command_prints_how_to_follow_the_run(bed, cli, capsys):
    assert main([*cli, "--yes"]) == 0
    out = capsys.readouterr().out
    assert "launched" in out and "launcher status smoke-" in out and "--follow" in out


def test_the_command_refuses_a_refused_instance_key_in_one_line(bed, monkeypatch, capsys):
    account = with_instance_key(bed, FAKE_FENCED_KEY)

    def deps(_account, confirm, progress, environ=None):
        made = bed.deps(confirm=confirm, account=account)
        made.progress = progress
        return made

    monkeypatch.setattr(run_command, "real_deps", deps)
    code = main(["run", "--stage", "smoke", "--config-dir", str(bed.config_dir),
                 "--code-dir", str(bed.code_dir), "--yes"])
    out = capsys.readouterr()
    assert code == 2
    [line] = [x for x in out.err.splitlines() if x.strip()]
    assert line.startswith("error: not launched, nothing was created: VULTR_SELF_DESTRUCT_KEY")
    assert "HTTP 401" in line and "Unauthorized IP address: 127.0.0.1" in line
    assert not any(key in out.out + out.err for key in ALL_FAKE_KEYS)
    untouched(bed)


@pytest.mark.parametrize(("overrides", "says"), [
    (Overrides(max_hours=1e-9), "max_hours 1e-09 is 6e-08 minutes"),
    (Overrides(max_cost_usd=0.0001), "max_cost_usd $0.0001 buys"),
])
def test_a_budget_that_ends_before_the_instance_boots_is_refused(quick_bed, overrides, says):
    with pytest.raises(ConfigError) as caught:
        run_stage(quick_bed.request(overrides=overrides), quick_bed.deps())
    message = caught.value.message
    assert says in message and "a run needs at least 5 minutes" in message
    assert quick_bed.emulator.mutations() == []


def test_a_budget_of_a_few_minutes_more_is_launched(quick_bed):
    result = run_stage(quick_bed.request(overrides=Overrides(max_hours=0.1)), quick_bed.deps())
    assert result.instance.id
