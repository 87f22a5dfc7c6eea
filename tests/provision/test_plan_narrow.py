"""The launch plan the user confirms, in a narrow terminal: each candidate's plan, region,
volume and prices whole on one line, never ``vcg-l4…``."""

from __future__ import annotations

import pytest
from support.narrow import NARROW, cut_or_split

from launcher.cli import main
from launcher.commands import run as run_command
from provision.test_inputs_and_dry_run import cli  # noqa: F401 - a fixture


@pytest.mark.parametrize("columns", NARROW)
def test_the_plan_shows_every_candidate_whole(bed, cli, capsys, monkeypatch,  # noqa: F811
                                              columns):
    shown = []
    monkeypatch.setattr(run_command, "plan_table",
                        lambda plan: shown.append(plan) or PLAN_TABLE(plan))
    monkeypatch.setenv("COLUMNS", columns)

    assert main([*cli, "--dry-run"]) == 0

    out = capsys.readouterr().out.split("snapshot: ")[0]  # the table, before the rest
    plan = shown[0]
    words = [plan.run_id] + [w for c in plan.candidates for w in (
        c.offer.plan_id, c.offer.region, f"{c.estimate.usd_per_hour:,.2f}",
        f"${c.estimate.worst_case_usd:,.2f}", *c.volume.describe().split())]
    assert len(plan.candidates) >= 3 and cut_or_split(out, words) == []
    assert "…" not in out


PLAN_TABLE = run_command.plan_table
