"""``launcher teardown RUN``: idempotent; a volume goes only with a verified upload (or
--force); what cannot be deleted is printed with the commands that delete it."""

from __future__ import annotations

import json

from launcher.cli import main
from launcher.operate.cleanup import KEEP_UNVERIFIED, execute, plan_teardown
from launcher.operate.runs import NoBucket
from runs.conftest import OTHER, RUN, make_run


def exists(client, made) -> tuple[bool, bool]:
    instances = {i.id for i in client.list_instances()}
    blocks = {b.id for b in client.list_blocks()}
    return made.instance_id in instances, made.volume_id in blocks


def test_a_verified_upload_lets_teardown_delete_instance_and_volume(cli_env, client, provider,
                                                                    publish, capsys):
    made = make_run(provider, RUN)
    other = make_run(provider, OTHER)
    publish("finished", RUN)

    assert main(["teardown", RUN, "--yes"]) == 0

    assert exists(client, made) == (False, False)
    assert exists(client, other) == (True, True)  # another run is never touched
    out = capsys.readouterr().out
    assert "upload verified in the bucket" in out and "deleted" in out
    assert "STILL EXISTS" not in out


def test_without_a_verified_upload_the_volume_is_kept_and_teardown_says_why(
        cli_env, client, provider, publish, capsys, monkeypatch):
    made = make_run(provider, OTHER)
    publish("finished", OTHER, verified=False)

    assert main(["teardown", OTHER, "--yes"]) == 1

    assert exists(client, made) == (False, True)
    out = capsys.readouterr().out
    assert KEEP_UNVERIFIED in out and "STILL EXISTS (1)" in out
    assert f"/v2/blocks/{made.volume_id}" in out and "$VULTR_KEY" in out


def test_force_deletes_the_volume_anyway_and_keep_volume_keeps_it(cli_env, client, provider,
                                                                  publish, capsys):
    forced = make_run(provider, OTHER)
    kept = make_run(provider, RUN)
    publish("finished", RUN)

    assert main(["teardown", OTHER, "--yes", "--force"]) == 0  # no status at all: --force
    assert main(["teardown", RUN, "--yes", "--keep-volume"]) == 0

    assert exists(client, forced) == (False, False)
    assert exists(client, kept) == (False, True)
    assert "--keep-volume" in capsys.readouterr().out


def test_teardown_is_idempotent(cli_env, client, provider, publish, capsys):
    made = make_run(provider, RUN)
    publish("finished", RUN)

    assert main(["teardown", RUN, "--yes"]) == 0
    capsys.readouterr()
    assert main(["teardown", RUN, "--yes"]) == 0
    assert "exists in Vultr any more" in capsys.readouterr().out

    again = make_run(provider, OTHER)
    plan = plan_teardown(provider, NoBucket(), OTHER, force=True)
    client.delete_instance(again.instance_id)  # someone else was quicker
    outcomes = execute(provider, plan.actions)
    assert [o.result for o in outcomes] == ["already gone", "deleted"]
    assert exists(client, made) == (False, False)


def test_a_failed_delete_prints_what_remains_and_the_curl_commands(cli_env, client, provider,
                                                                   publish, capsys,
                                                                   monkeypatch):
    made = make_run(provider, RUN)
    publish("finished", RUN)
    cli_env.inject("DELETE /instances/{id}", "500", count=50)

    assert main(["teardown", RUN, "--yes"]) == 1

    out = capsys.readouterr().out
    assert "STILL EXISTS (1)" in out and "failed" in out
    assert (f'curl -X DELETE -H "Authorization: Bearer $VULTR_KEY" '
            f"{cli_env.url}/instances/{made.instance_id}") in out
    assert exists(client, made) == (True, False)  # the volume still went: upload verified


def test_no_terminal_and_no_yes_means_nothing_is_deleted(cli_env, client, provider, capsys):
    made = make_run(provider, RUN)

    assert main(["teardown", RUN]) == 2

    assert "--yes" in capsys.readouterr().err
    assert exists(client, made) == (True, True)


def test_an_unreachable_bucket_keeps_the_volume_and_says_why(cli_env, client, provider,
                                                             capsys, monkeypatch):
    monkeypatch.setenv("B2_APPLICATION_KEY", "wrong-secret-0001")
    made = make_run(provider, RUN)

    assert main(["teardown", RUN, "--yes", "--json"]) == 1

    result = json.loads(capsys.readouterr().out)
    volume = next(o for o in result["outcomes"] if o["kind"] == "volume")
    assert volume["result"] == "kept" and "bucket unreachable" in volume["detail"]
    assert KEEP_UNVERIFIED in volume["detail"]
    assert exists(client, made) == (False, True)


def test_an_unknown_run_is_an_error_that_names_the_runs_it_is_close_to(cli_env, provider,
                                                                       publish, capsys):
    make_run(provider, RUN)  # known from Vultr's tags
    publish("finished", OTHER)  # known from the bucket only
    capsys.readouterr()

    assert main(["teardown", "difusion-20261129-100000", "--yes"]) == 1
    tag_typo = capsys.readouterr()
    assert main(["teardown", "operater-20261129-110000", "--yes", "--json"]) == 1
    bucket_typo = capsys.readouterr()
    assert main(["teardown", "zzz-19991231-235959", "--yes"]) == 1
    nothing_near = capsys.readouterr()
    assert main(["teardown", OTHER, "--yes"]) == 0  # known, nothing left: torn down
    torn_down = capsys.readouterr()

    assert tag_typo.out == "" and "torn down" not in tag_typo.err
    assert tag_typo.err.startswith("error: no run difusion-20261129-100000: nothing in Vultr")
    assert tag_typo.err.rstrip().endswith(f"did you mean {RUN}?")
    assert len(tag_typo.err.strip().splitlines()) == 1
    assert bucket_typo.out == "" and f"did you mean {OTHER}?" in bucket_typo.err
    assert "did you mean" not in nothing_near.err and "launcher status" in nothing_near.err
    assert "it is torn down" in torn_down.out
