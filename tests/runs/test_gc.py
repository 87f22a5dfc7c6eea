"""``launcher gc``: ended and expired runs, orphan run volumes; never reusable volumes or
anything foreign; deletes only with --yes; a failed read is an error, never "nothing"."""

from __future__ import annotations

import json
import time

import pytest

from launcher.bucket import Bucket
from launcher.cli import main
from launcher.errors import ApiError, ConfigError
from launcher.operate.cleanup import VOLUME_GRACE_S, plan_gc
from launcher.operate.runs import NoBucket
from runs.conftest import OTHER, RUN, foreign_resources, make_run, reusable_volume
from runs.test_status import WRONG_B2

EXPIRED = "smoke-20261129-090000"
LIVE = "smoke-20261129-120000"
ORPHAN = "smoke-20261129-080000"


@pytest.fixture
def garden(provider, client, publish_all):
    """Every kind of thing gc meets: an ended run (verified), an ended run without a verified
    upload whose instance is gone, an expired run, a live run, reusable and foreign things."""
    runs = {
        RUN: make_run(provider, RUN),  # succeeded, upload verified: instance + volume go
        OTHER: make_run(provider, OTHER, instance=False),  # failed, unverified: volume kept
        EXPIRED: make_run(provider, EXPIRED, expires=time.time() - 600),  # no status at all
        LIVE: make_run(provider, LIVE),  # running, not expired: untouched
    }
    publish_all({RUN: ("finished", RUN, {}),
                 OTHER: ("finished", OTHER, {"verified": False}),
                 LIVE: ("running", RUN, {})})
    return runs, reusable_volume(client), foreign_resources(client)


def test_gc_finds_ended_expired_and_orphaned_and_nothing_else(garden, provider, client, store):
    runs, reusable, (foreign_instance, foreign_volume) = garden

    actions = {(a.kind, a.run_id): a for a in plan_gc(provider, store)}

    assert set(actions) == {("instance", RUN), ("volume", RUN), ("volume", OTHER),
                            ("instance", EXPIRED), ("volume", EXPIRED)}
    assert actions["instance", RUN].reason == "run succeeded (status in the bucket)"
    assert actions["instance", EXPIRED].reason.startswith("expired 10 min ago")
    assert actions["volume", RUN].delete and "upload verified" in actions["volume", RUN].reason
    assert not actions["volume", OTHER].delete
    assert "no verified upload" in actions["volume", OTHER].reason
    assert not actions["volume", EXPIRED].delete  # no status: its data may be only there
    touched = {a.id for a in actions.values()}
    assert not touched & {reusable, foreign_instance, foreign_volume, runs[LIVE].instance_id,
                          runs[LIVE].volume_id}
    forced = plan_gc(provider, store, force=True)  # --force: the volumes go too
    assert len(forced) == 5 and all(a.delete for a in forced)


def test_a_young_volume_without_instance_or_status_may_be_mid_launch(provider, client, store):
    young = make_run(provider, "smoke-20261129-130000", instance=False)

    now = [a.delete for a in plan_gc(provider, store, force=True)]
    later = plan_gc(provider, store, force=True,
                    now=lambda: time.time() + VOLUME_GRACE_S + 60)

    assert now == [False]
    assert [(a.id, a.delete) for a in later] == [(young.volume_id, True)]


def test_gc_lists_without_yes_and_deletes_with_it(cli_env, garden, client, capsys):
    runs, reusable, (foreign_instance, foreign_volume) = garden
    before = (len(client.list_instances()), len(client.list_blocks()))

    assert main(["gc", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["deleted"] is False and len(data["actions"]) == 5
    assert main(["gc"]) == 0
    out = capsys.readouterr().out
    assert "Nothing deleted" in out and "`launcher gc --yes` deletes the 3" in out
    assert (len(client.list_instances()), len(client.list_blocks())) == before

    assert main(["gc", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "STILL EXISTS (2)" in out  # the two unverified volumes, with their commands
    instances = {i.id for i in client.list_instances()}
    blocks = {b.id for b in client.list_blocks()}
    assert instances == {runs[LIVE].instance_id, foreign_instance}
    assert blocks == {runs[LIVE].volume_id, runs[OTHER].volume_id, runs[EXPIRED].volume_id,
                      reusable, foreign_volume}


def test_nothing_to_collect_is_said_only_after_looking(cli_env, capsys, provider):
    make_run(provider, LIVE)
    assert main(["gc", "--yes"]) == 0
    assert "Nothing to collect" in capsys.readouterr().out

    cli_env.inject("GET /instances", "500", count=50)
    assert main(["gc", "--yes"]) == 3
    captured = capsys.readouterr()
    assert "Nothing to collect" not in captured.out and "error:" in captured.err


def test_a_bucket_that_cannot_be_read_is_an_error(provider, client, address):
    make_run(provider, RUN)
    with pytest.raises(ApiError, match="gc cannot tell which runs ended: bucket unreachable"):
        plan_gc(provider, Bucket(address, WRONG_B2))
    with pytest.raises(ConfigError, match="B2_BUCKET"):
        plan_gc(provider, NoBucket())
