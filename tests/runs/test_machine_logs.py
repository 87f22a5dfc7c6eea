"""``launcher logs RUN --machine``: the machine's own output from the cloud's API (Vast.ai's
container log through ``request_logs``, served by the Vast emulator), refused where the cloud
has none or the run has no single instance; and the bucket's missing-log hint pointing there."""

from __future__ import annotations

import functools

import pytest
from support.clock import FakeClock
from support.keys import ALL_FAKE_KEYS, FAKE_VAST_KEY

from launcher.cli import main
from launcher.commands import logs as logs_command
from launcher.operate.runlogs import follow
from launcher.providers.vast import VastProvider
from launcher.secrets import Secret
from launcher.vast import VastClient, VastHttp
from runs import test_vast_commands as vast_commands
from runs.conftest import RUN, make_run

vast = vast_commands.vast
vast_env = vast_commands.vast_env
ONSTART_FAILED = ("2026-12-05T12:00:01Z onstart: runner.pyz: HTTP Error 403: Forbidden; "
                  "try 6 of 6\n2026-12-05T12:00:31Z onstart: FAILED: cannot fetch runner.pyz\n")


@pytest.fixture
def vast_provider(vast):
    with VastProvider(VastClient(VastHttp(Secret(FAKE_VAST_KEY), base_url=vast.url))) as p:
        yield p


def vast_run(vast, vast_provider, text: str = "") -> str:
    """A Vast run with one instance whose container printed ``text``."""
    instance_id = vast_commands.launched(vast_provider, RUN)
    if text:
        vast.append_log(int(instance_id), text)
    return instance_id


def no_secret(*outputs: str) -> None:
    for text in outputs:
        assert not any(key in text for key in ALL_FAKE_KEYS)


def test_the_container_log_of_a_vast_run_is_printed(vast_env, vast_provider, capsys):
    vast_run(vast_env, vast_provider, ONSTART_FAILED)

    assert main(["logs", RUN, "--machine", "--provider", "vast"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ONSTART_FAILED
    no_secret(captured.out, captured.err)


def test_tail_keeps_the_last_lines(vast_env, vast_provider, capsys):
    vast_run(vast_env, vast_provider, "".join(f"line {n}\n" for n in range(1, 6)))

    assert main(["logs", RUN, "--machine", "--tail", "2", "--provider", "vast"]) == 0
    assert capsys.readouterr().out == "line 4\nline 5\n"


def test_tail_without_machine_is_refused(vast_env, capsys):
    assert main(["logs", RUN, "--tail", "2", "--provider", "vast"]) == 2
    assert "--tail goes with --machine" in capsys.readouterr().err


def test_escape_sequences_in_the_container_log_are_shown_inert(vast_env, vast_provider,
                                                               capsys):
    vast_run(vast_env, vast_provider, "ok\x1b[2J\x1b]0;owned\x07 done\n")

    assert main(["logs", RUN, "--machine", "--provider", "vast"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert out == "ok\\x1b[2J\\x1b]0;owned\\x07 done\n"


def test_machine_is_refused_on_vultr_naming_it(cli_env, provider, capsys):
    make_run(provider, RUN)

    assert main(["logs", RUN, "--machine"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Vultr's API hands over no log of a machine's own output" in captured.err
    assert f"hint: `launcher logs {RUN}` (and `--runner`) prints the run's logs from the " \
           "bucket" in captured.err
    no_secret(captured.err)


def test_machine_is_refused_for_a_run_without_an_instance(vast_env, capsys):
    assert main(["logs", RUN, "--machine", "--provider", "vast"]) == 1
    err = capsys.readouterr().err
    assert f"run {RUN} has no instance: it has ended (or was never launched)" in err
    assert f"its logs are in the bucket: `launcher logs {RUN}`" in err


def test_follow_with_machine_is_refused(vast_env, vast_provider, capsys):
    vast_run(vast_env, vast_provider, "line\n")

    assert main(["logs", RUN, "--machine", "-f", "--provider", "vast"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "--machine reads the machine's log once" in captured.err


def test_a_missing_log_points_at_machine_on_vast(vast_env, vast_provider, capsys):
    vast_run(vast_env, vast_provider)

    assert main(["logs", RUN, "--provider", "vast"]) == 1
    err = capsys.readouterr().err
    assert f"logs/train.log of run {RUN} is not in the bucket (yet)" in err
    assert f"when the machine failed to start, `launcher logs {RUN} --machine` prints the " \
           "machine's own output" in err


def test_a_missing_log_keeps_its_hint_on_vultr(cli_env, provider, capsys):
    make_run(provider, RUN)

    assert main(["logs", RUN]) == 1
    err = capsys.readouterr().err
    assert "--machine" not in err and "`launcher status RUN` shows where it is" in err
    assert main(["logs", RUN, "--machine"]) == 1  # the flag exists, and is refused here
    assert "Vultr" in capsys.readouterr().err


def test_the_vast_key_is_never_printed_when_the_log_request_fails(vast_env, vast_provider,
                                                                   capsys):
    vast_run(vast_env, vast_provider, "line\n")
    vast_env.inject("PUT /instances/request_logs/{id}/", "refuse", status=403, error="scope")

    assert main(["-v", "logs", RUN, "--machine", "--provider", "vast"]) == 3
    captured = capsys.readouterr()
    assert "This key may not be used for this request." in captured.err
    no_secret(captured.out, captured.err)


def test_follow_waiting_on_vast_mentions_machine_once(vast_env, vast_provider, capsys,
                                                      monkeypatch):
    vast_run(vast_env, vast_provider)
    time = FakeClock()
    monkeypatch.setattr(logs_command, "follow", functools.partial(
        follow, clock=time.clock, sleep=time.sleep))

    assert main(["logs", RUN, "-f", "--max-wait", "3m", "--provider", "vast"]) == 1
    err = capsys.readouterr().err
    assert err.count(f"`launcher logs {RUN} --machine`") == 1
    assert f"(still waiting for logs/train.log: 58 s so far, no status from the run yet; if " \
           f"the machine failed to start, `launcher logs {RUN} --machine` prints the " \
           "machine's own output)" in err


def test_a_run_with_several_instances_is_refused_naming_them(vast_env, vast_provider, capsys):
    first, second = vast_run(vast_env, vast_provider), vast_run(vast_env, vast_provider)

    assert main(["logs", RUN, "--machine", "--provider", "vast"]) == 1
    err = capsys.readouterr().err
    assert f"run {RUN} has 2 instances ({first}, {second}); --machine reads one machine" in err
    assert f"`launcher teardown {RUN}` removes them" in err
