"""Reusable volumes (``launcher-cache-*``) belong to no run but bill every month: ``status``
lists them after the runs table and ``gc`` with its garbage, each with its monthly cost;
``gc`` never deletes them and says how to."""

from __future__ import annotations

import json

from launcher.cli import main
from launcher.vultr import BlockSpec
from runs.conftest import REGION, RUN, make_run, reusable_volume

STORAGE_OPT = "launcher-cache-archive"


def two_kept(client) -> tuple[str, str]:
    """``launcher-cache-ups`` (40 GB NVMe: $4.00/month) and a 400 GB HDD one ($10.00)."""
    hdd = client.create_block(BlockSpec(REGION, 400, STORAGE_OPT, block_type="storage_opt"))
    return reusable_volume(client), hdd.id


def test_status_lists_kept_volumes_after_the_runs_table(cli_env, provider, client, capsys):
    made = make_run(provider, RUN)
    ups, hdd = two_kept(client)
    client.attach_block(ups, made.instance_id, live=True)
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert out.index(RUN) < out.index("Kept volumes")
    kept = out[out.index("Kept volumes"):]
    assert "~$14.00/month" in kept
    ups_row = next(line for line in kept.splitlines() if "launcher-cache-ups" in line)
    assert ups in ups_row and REGION in ups_row and "40 GB" in ups_row
    assert made.instance_id in ups_row and "4.00" in ups_row
    assert "10.00" in next(line for line in kept.splitlines() if STORAGE_OPT in line)
    assert f"{cli_env.url}/blocks/ID" in kept.replace("\n", "")


def test_status_without_runs_still_shows_kept_volumes(cli_env, client, capsys):
    two_kept(client)
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "No runs" in out and "launcher-cache-ups" in out and STORAGE_OPT in out


def test_gc_lists_kept_volumes_with_their_cost_and_never_deletes_them(cli_env, client,
                                                                      capsys):
    ups, hdd = two_kept(client)
    assert main(["gc", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["actions"] == []
    kept = {v["id"]: v for v in data["kept_volumes"]}
    assert kept[ups]["usd_per_month"] == 4.0 and kept[hdd]["usd_per_month"] == 10.0
    assert kept[ups]["label"] == "launcher-cache-ups" and kept[ups]["region"] == REGION
    assert kept[hdd]["delete_commands"] == [
        f'curl -X DELETE -H "Authorization: Bearer $VULTR_KEY" {cli_env.url}/blocks/{hdd}']
    assert main(["gc", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "Nothing to collect" in out and "Kept volumes" in out and ups in out
    assert "never deleted by gc" in out and "curl -X DELETE" in out
    assert {b.id for b in client.list_blocks()} == {ups, hdd}
