"""A run just launched: its instance exists, its first status is not in the bucket yet.
``status`` shows it with its instance's state and when the first heartbeat can come, and
``logs -f`` says what it waits for instead of staying silent."""

from __future__ import annotations

import functools
import json

import pytest
from support.clock import FakeClock

from launcher.cli import main
from launcher.commands import logs as logs_command
from launcher.emulator import ManualClock, Timing
from launcher.operate.runlogs import follow
from runs.conftest import OTHER, RUN, make_run


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emulator(make_emulator, clock):
    """Instances pending for 10 s, then booting until 100 s (the emulator's clock)."""
    return make_emulator(clock=clock, timing=Timing(
        instance_active_s=10, server_booting_s=10, server_ok_s=100, locked_after_create_s=0))


def test_status_shows_a_run_before_its_first_heartbeat_with_its_instance_state(
        cli_env, provider, clock, capsys):
    make_run(provider, RUN, attach=False)
    clock.advance(20)
    make_run(provider, OTHER, attach=False)

    assert main(["status"]) == 0
    table = capsys.readouterr().out
    assert main(["status", RUN]) == 0
    one = capsys.readouterr().out
    assert main(["status", RUN, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)

    assert RUN in table and OTHER in table and "not uploaded yet" not in table
    assert "starting: booting (server installingbooting)" in table
    assert "starting: instance pending" in table
    assert table.count("none yet; first in ≥") == 2
    assert "heartbeat  none yet: the runner uploads its first status heartbeat_s (60 s " \
           "unless the stage sets it) after training starts" in one
    assert "not before " in one and f"`launcher logs {RUN} -f` waits for it" in one
    assert data["starting"] is True and 0 < data["first_heartbeat_in_s"] <= 60


def test_logs_follow_before_anything_was_uploaded_says_what_it_waits_for(
        cli_env, capsys, monkeypatch):
    time = FakeClock()
    monkeypatch.setattr(logs_command, "follow", functools.partial(
        follow, clock=time.clock, sleep=time.sleep))

    assert main(["logs", RUN, "-f", "--max-wait", "2m"]) == 1

    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert captured.out == ""
    assert lines[0].startswith(f"(waiting for logs/train.log of run {RUN}: not in the bucket "
                               "yet, no status from the run yet;")
    assert len([x for x in lines if x.startswith("(still waiting for logs/train.log: ")]) == 3
    assert lines[-1].startswith("(logs/train.log never appeared in the bucket)") or \
        "stopped following after 2 min" in lines[-1]
