"""``launcher gc`` keeps a run's volume that is attached to an instance which is not one of
the instances it collects from that run — another run's, or one the launcher never made —
even with ``--force`` and a verified upload: detaching it would pull the disk out from
under whatever runs there (launcher/operate/cleanup.py, ``_orphan_verdict``)."""

from __future__ import annotations

import json

from launcher.cli import main
from launcher.operate.cleanup import plan_gc
from runs.conftest import RUN, foreign_resources, make_run

LIVE = "smoke-20261129-120000"


def test_a_volume_attached_to_another_runs_instance_is_kept(provider, client, store,
                                                           publish_all):
    """RUN ended with a verified upload, so its own instance goes; its volume, attached to
    the still-running LIVE run's instance, stays — with and without --force."""
    ended = make_run(provider, RUN, attach=False)
    live = make_run(provider, LIVE, volume=False)
    provider.attach_volume(ended.volume_id, live.instance_id, deadline_s=10)
    publish_all({RUN: ("finished", RUN, {}), LIVE: ("running", RUN, {})})

    for force in (False, True):
        actions = {(a.kind, a.id): a for a in plan_gc(provider, store, force=force)}
        assert set(actions) == {("instance", ended.instance_id), ("volume", ended.volume_id)}
        volume = actions["volume", ended.volume_id]
        assert (volume.delete, volume.reason) == (
            False, f"attached to instance {live.instance_id}, which is not this run's: kept")
        assert actions["instance", ended.instance_id].delete


def test_a_volume_of_a_run_without_instances_attached_to_a_foreign_instance_is_kept(
        cli_env, provider, client, publish_all, capsys):
    """No instance of its run is left and its upload is verified, but the volume is attached
    to an instance the launcher never made: `gc --yes --force` deletes nothing."""
    ended = make_run(provider, RUN, instance=False)
    foreign_instance, _ = foreign_resources(client)
    provider.attach_volume(ended.volume_id, foreign_instance, deadline_s=10)
    publish_all({RUN: ("finished", RUN, {})})

    assert main(["gc", "--json", "--force"]) == 0
    (action,) = json.loads(capsys.readouterr().out)["actions"]
    assert (action["id"], action["delete"]) == (ended.volume_id, False), action
    assert f"attached to instance {foreign_instance}" in action["reason"]

    assert main(["gc", "--yes", "--force"]) == 0
    capsys.readouterr()
    block = client.get_block(ended.volume_id)
    assert block.attached_to == foreign_instance
    assert foreign_instance in {i.id for i in client.list_instances()}
