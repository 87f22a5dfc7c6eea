"""What the bucket and Vultr's API hand back is printed inert: anything holding a run's B2
key can write its status.json and logs, so an escape sequence or rich markup in them must
reach the operator's terminal as visible text, never as a command to the terminal."""

from __future__ import annotations

import functools
import json
import re

from runner.conftest import put
from support.clock import FakeClock

from launcher.cli import main
from launcher.commands import logs as logs_command
from launcher.commands import status as status_command
from launcher.errors import ApiError
from launcher.naming import instance_tags
from launcher.operate.runlogs import follow
from launcher.terminal import printable
from launcher.vultr import InstanceSpec
from runs.conftest import PLAN, REGION, RUN, SNAPSHOT_ID, make_run

# clear screen, set the window title, a C1 CSI, rich markup, a right-to-left override, and
# an emoji code rich would draw as a symbol the run never sent
HOSTILE = "\x1b[2J\x1b]0;owned\x07\x9b31m[bold]loud[/bold]\u202e:warning:"
SHOWN = "\\x1b[2J\\x1b]0;owned\\x07\\x9b31m[bold]loud[/bold]\\u202e:warning:"
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def hostile_status(state: str) -> dict:
    return {"run_id": RUN, "state": state, "phase": "train" + HOSTILE,
            "updated": "2026-11-29T10:00:00Z", "reason": HOSTILE, "notes": [HOSTILE],
            "left_behind": [HOSTILE],
            "phases": [{"name": "train" + HOSTILE, "started": HOSTILE, "ended": None,
                        "seconds": HOSTILE, "ok": None, "detail": HOSTILE}]}


def place(s3_server, bucket, tmp_path, state: str) -> None:
    put(s3_server, bucket, f"runs/{RUN}/status.json",
        json.dumps(hostile_status(state)).encode(), tmp_path)
    log = f"epoch 1 {HOSTILE}\nprogress 10%\rprogress 20%\r\ndone\n"
    put(s3_server, bucket, f"runs/{RUN}/logs/train.log", log.encode(), tmp_path)


def inert(text: str) -> str:
    assert not CONTROL.search(text), repr(CONTROL.findall(text))
    return text


def test_printable_shows_every_control_character_and_keeps_lines():
    assert printable(HOSTILE) == SHOWN
    assert printable("a\tb\r\nc\rd\x7f\x00") == "a\tb\nc\nd\\x7f\\x00"
    assert printable("ünïcödé → ok") == "ünïcödé → ok"


def test_status_and_logs_print_what_the_bucket_holds_inert(cli_env, provider, client,
                                                           s3_server, bucket, tmp_path,
                                                           capsys):
    make_run(provider, RUN)
    client.create_instance(InstanceSpec(REGION, PLAN, "spare" + HOSTILE,
                                        snapshot_id=SNAPSHOT_ID,
                                        tags=instance_tags(RUN, "diffusion", 2e9)))
    place(s3_server, bucket, tmp_path, "running" + HOSTILE)

    assert main(["status"]) == 0
    listed = inert(capsys.readouterr().out)
    assert main(["status", RUN]) == 0
    one = inert(capsys.readouterr().out)
    assert main(["logs", RUN]) == 0
    log = capsys.readouterr()

    assert RUN in listed and "\\x1b" in listed
    assert f"note: {SHOWN}" in one and f"spare{SHOWN}" in one  # visible, whole, not markup
    assert inert(log.out) == f"epoch 1 {SHOWN}\nprogress 10%\nprogress 20%\ndone\n"


def test_logs_follow_and_its_notes_are_inert(cli_env, s3_server, bucket, tmp_path, capsys,
                                             monkeypatch):
    place(s3_server, bucket, tmp_path, "succeeded")
    time = FakeClock()
    monkeypatch.setattr(logs_command, "follow", functools.partial(
        follow, clock=time.clock, sleep=time.sleep))

    assert main(["logs", RUN, "-f", "--max-wait", "10m"]) == 0

    captured = capsys.readouterr()
    assert inert(captured.out).startswith(f"epoch 1 {SHOWN}\n")
    assert "(run succeeded; log complete)" in inert(captured.err)


def test_an_error_quoting_the_api_is_inert(cli_env, monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise ApiError(f"GET /instances (HTTP 400): {HOSTILE}")

    monkeypatch.setattr(status_command, "view", refuse)

    assert main(["status", RUN]) == 3

    err = inert(capsys.readouterr().err)
    assert SHOWN in err.replace("\n", "")
