"""``launcher status``: runs read back from Vultr's tags and the bucket only."""

from __future__ import annotations

import json
import time

import pytest
from runner.conftest import put

from launcher.bucket import Bucket
from launcher.cli import main
from launcher.operate.runs import (
    NoBucket,
    RunStatus,
    list_views,
    read_status,
    view,
)
from launcher.providers.offers import HOURS_PER_MONTH
from launcher.runner.spec import RunSecrets
from launcher.timefmt import parse_time
from runs.conftest import (
    KEPT_VOLUME,
    OTHER,
    PLAN,
    RUN,
    foreign_resources,
    make_run,
    reusable_volume,
)

WRONG_B2 = RunSecrets({"B2_KEY_ID": "AKIDWRONG0001", "B2_APP_KEY": "wrong-secret-0001"})


def test_every_run_with_its_state_heartbeat_age_and_cost(provider, client, store, publish):
    make_run(provider, RUN)
    make_run(provider, OTHER, stage="operator")
    reusable_volume(client)
    foreign_resources(client)
    folder = publish("running", RUN)
    later = time.time() + 2 * 3600

    views = {v.run_id: v for v in list_views(provider, store, now=lambda: later)}

    assert set(views) == {RUN, OTHER}  # no reusable volume, nothing foreign
    running, quiet = views[RUN], views[OTHER]
    assert (running.status.state, running.status.phase, running.stage) == \
        ("running", "train", "diffusion")
    # The heartbeat re-uploads an unchanged status.json: its age is the upload's, not the
    # file's last change (that was when training started).
    changed = parse_time(json.loads((folder / "status.json").read_text())["updated"])
    assert running.status.uploaded >= int(changed)
    assert running.heartbeat_age_s == pytest.approx(2 * 3600, abs=30)
    assert -3600 - 60 < running.expires_in_s < -3600 + 60  # expired an hour before "later"
    plan = next(p for p in client.list_plans() if p.id == PLAN)
    block = client.list_blocks(label=f"{RUN}-cache")[0]
    per_hour = plan.hourly_cost + block.cost / HOURS_PER_MONTH
    assert running.cost.usd == pytest.approx(per_hour * 2, rel=0.01)
    assert (quiet.status.problem, quiet.status.unreachable) == ("not uploaded yet", False)
    assert quiet.stage == "operator" and quiet.heartbeat_age_s is None


def test_a_bucket_that_cannot_be_read_is_said_so_never_shown_as_no_status(
        provider, client, address, publish):
    make_run(provider, RUN)
    make_run(provider, OTHER)
    publish("running", RUN)

    views = list_views(provider, Bucket(address, WRONG_B2))

    assert len(views) == 2 and all(v.instances for v in views)
    for v in views:
        assert v.status.unreachable and v.status.problem.startswith("bucket unreachable: ")
        assert "master key" in v.status.problem and "wrong-secret" not in v.status.problem
    unset = read_status(NoBucket("set B2_BUCKET"), RUN)
    assert unset.unreachable and unset.problem == "bucket not configured: set B2_BUCKET"


def test_only_the_exact_status_key_counts(store, s3_server, bucket, tmp_path):
    put(s3_server, bucket, f"runs/{RUN}/status.json.tmp", b"{}", tmp_path)
    put(s3_server, bucket, f"runs/{RUN}x/status.json", b"{}", tmp_path)
    assert read_status(store, RUN).problem == "not uploaded yet"
    put(s3_server, bucket, f"runs/{RUN}/status.json", b"[not json", tmp_path)
    broken = read_status(store, RUN)
    assert broken.problem.startswith("status.json unreadable") and not broken.unreachable


def test_upload_verified_is_read_from_the_runners_own_status(publish, store):
    publish("finished", RUN)
    publish("finished", OTHER, verified=False)

    good, bad = read_status(store, RUN), read_status(store, OTHER)

    assert (good.state, good.final, good.upload_verified) == ("succeeded", True, True)
    assert (bad.state, bad.final, bad.upload_verified) == ("failed", True, False)
    assert not RunStatus(data={"phases": [{"name": "upload", "ok": None}]}).upload_verified


def test_status_table_from_a_fresh_machine(cli_env, provider, publish, capsys, monkeypatch):
    make_run(provider, RUN)
    make_run(provider, OTHER)
    publish("running", RUN)

    assert main(["status"]) == 0

    out = capsys.readouterr().out
    assert RUN in out and OTHER in out
    # OTHER has an instance and no status yet: starting, with its instance's state
    assert "running (train)" in out and "starting: instance up, no status yet" in out
    assert "none yet; first in ≥" in out and "~$" in out
    assert "estimate" in out


def test_status_says_bucket_unreachable_when_the_key_is_refused(cli_env, provider, capsys,
                                                                monkeypatch):
    monkeypatch.setenv("B2_APPLICATION_KEY", "wrong-secret-0001")
    make_run(provider, RUN)

    assert main(["status"]) == 0

    out = capsys.readouterr().out
    assert RUN in out and "bucket unreachable" in out and "wrong-secret" not in out


def test_one_run_in_detail_phases_notes_and_left_behind_verbatim(cli_env, provider, publish,
                                                                 capsys):
    made = make_run(provider, OTHER)
    publish("finished", OTHER, verified=False)

    assert main(["status", OTHER]) == 0

    out = capsys.readouterr().out
    for phase in ("harden", "train", "upload", "teardown"):
        assert phase in out
    assert "failed" in out and "not verified" in out
    assert KEPT_VOLUME in out  # verbatim: it is the command that removes it
    assert made.instance_id in out and f"{OTHER}-cache" in out
    assert f"launcher teardown {OTHER}" in out


def test_status_json_of_one_run_and_of_all(cli_env, provider, publish, capsys):
    make_run(provider, RUN)
    publish("finished", RUN)

    assert main(["status", RUN, "--json"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert main(["status", "--json"]) == 0
    every = json.loads(capsys.readouterr().out)

    assert one["state"] == "succeeded" and one["upload_verified"] is True
    assert one["status"]["run_id"] == RUN and one["cost_estimate_usd"] is not None
    assert [v["run_id"] for v in every] == [RUN]


def test_a_run_only_the_bucket_remembers_and_one_nobody_knows(cli_env, publish, capsys,
                                                              provider, store, client):
    publish("finished", RUN)

    gone = view(RUN, provider, store)
    assert not gone.exists and gone.status.state == "succeeded"
    assert main(["status", "nobody-20261129-100000"]) == 1
    err = capsys.readouterr().err
    assert "no run nobody-20261129-100000" in err


def test_no_runs_is_said_only_after_looking(cli_env, capsys):
    assert main(["status"]) == 0
    assert "No runs" in capsys.readouterr().out
    cli_env.inject("GET /instances", "500", count=20)
    assert main(["status"]) == 3
    captured = capsys.readouterr()
    assert "No runs" not in captured.out and "error:" in captured.err


def test_a_bad_run_id_is_refused_by_the_parser(cli_env, capsys):
    with pytest.raises(SystemExit):
        main(["status", "Bad Id/../x"])
    assert "expected a run id" in capsys.readouterr().err


def test_a_run_whose_instance_is_gone_but_whose_status_is_not_final_says_so(cli_env, publish,
                                                                            capsys):
    publish("running", RUN)  # its last heartbeat; the final status never came

    assert main(["status", RUN]) == 0

    out = capsys.readouterr().out
    assert "the instance is gone but this status is not final" in out
    assert "final status never reached the bucket" in out
