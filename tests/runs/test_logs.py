"""``launcher logs``: from the bucket, printed once or followed (bounded, rotation-aware)."""

from __future__ import annotations

import functools
import hashlib
import json

import pytest
from runner.conftest import put
from support.clock import FakeClock

from launcher.bucket import Bucket, BucketAddress, ObjectStat
from launcher.cli import main
from launcher.commands import logs as logs_command
from launcher.errors import ApiError
from launcher.operate.runlogs import ROTATED, follow, new_part
from runs.conftest import OTHER, RUN, TRAIN_LOG
from runs.test_status import WRONG_B2

TRAIN_KEY = f"runs/{RUN}/logs/train.log"


class MemoryBucket:
    """A bucket in a dict, for the follow loop's timing logic (SeaweedFS is slow to poll)."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.address = BucketAddress("http://127.0.0.1:1", "mem")
        self.objects = objects

    def stat(self, url: str) -> ObjectStat | None:
        key = url.split("/", 3)[3]
        data = self.objects.get(key)
        return None if data is None else \
            ObjectStat(key, len(data), None, hashlib.md5(data).hexdigest())

    def read_text(self, url: str) -> str:
        key = url.split("/", 3)[3]
        if key not in self.objects:
            raise ApiError(f"bucket: read {url}: NoSuchKey")
        return self.objects[key].decode()

    def read_json(self, url: str) -> dict:
        return json.loads(self.read_text(url))


def test_logs_print_from_the_bucket_after_the_instance_is_gone(cli_env, publish, capsys):
    publish("finished", RUN)  # no instance, no volume: only the bucket remembers

    assert main(["logs", RUN]) == 0
    assert capsys.readouterr().out == TRAIN_LOG
    assert main(["logs", RUN, "--runner"]) == 0
    out = capsys.readouterr().out
    assert "phase train: start" in out and "phase upload: ok" in out


def test_a_log_not_uploaded_yet_is_said_so(cli_env, capsys):
    assert main(["logs", OTHER]) == 1
    assert "logs/train.log of run operator-20261129-110000 is not in the bucket (yet)" in \
        capsys.readouterr().err


def test_a_bucket_failure_is_an_error_not_an_empty_log(cli_env, monkeypatch, capsys, publish):
    publish("finished", RUN)
    monkeypatch.setenv("B2_APPLICATION_KEY", "wrong-secret-0001")
    assert main(["logs", RUN]) == 3
    captured = capsys.readouterr()
    assert captured.out == "" and "master key" in captured.err


def test_follow_prints_only_what_is_new_and_stops_once_the_run_ended(
        publish, runner_output, store, s3_server, bucket, tmp_path):
    first = (publish("running", RUN) / "logs" / "train.log").read_text()
    final_status = (runner_output("finished", RUN) / "status.json").read_bytes()

    def grow(text: str):
        return lambda: put(s3_server, bucket, TRAIN_KEY, text.encode(), tmp_path)

    def finish():  # as the final upload does it: status first, the log after
        put(s3_server, bucket, f"runs/{RUN}/status.json", final_status, tmp_path)
        grow(first + "epoch 2\nepoch 3\n")()

    time = FakeClock([grow(first + "epoch 2\n"), finish])
    printed: list[str] = []
    notes: list[str] = []

    result = follow(store, RUN, "train", printed.append, notes.append, max_wait_s=3600,
                    clock=time.clock, sleep=time.sleep)

    assert printed == [first, "epoch 2\n", "epoch 3\n"]  # never the whole log again
    assert (result.reason, result.state) == ("final", "succeeded")
    assert result.polls <= 6 and notes == []


def test_follow_says_when_the_log_was_rotated_and_carries_on(runner_output):
    status = (runner_output("running", RUN) / "status.json").read_bytes()
    memory = MemoryBucket({f"runs/{RUN}/status.json": status,
                           TRAIN_KEY: b"old line 1\nold line 2\n"})
    time = FakeClock([lambda: memory.objects.update({TRAIN_KEY: b"brand new\n"})])
    printed: list[str] = []
    notes: list[str] = []

    result = follow(memory, RUN, "train", printed.append, notes.append, max_wait_s=20,
                    poll_s=2, clock=time.clock, sleep=time.sleep)

    assert printed == ["old line 1\nold line 2\n", "brand new\n"]
    assert notes == [ROTATED]
    assert result.reason == "deadline"  # the run never ended: the deadline stopped it


def test_follow_is_bounded_by_its_deadline_with_backoff(runner_output):
    status = (runner_output("running", RUN) / "status.json").read_bytes()
    memory = MemoryBucket({f"runs/{RUN}/status.json": status, TRAIN_KEY: b"x\n"})
    time = FakeClock()

    result = follow(memory, RUN, "train", lambda text: None, lambda text: None,
                    max_wait_s=12 * 3600, poll_s=2, max_poll_s=30, clock=time.clock,
                    sleep=time.sleep)

    assert result.reason == "deadline" and result.state == "running"
    assert sum(time.sleeps) == pytest.approx(12 * 3600)
    assert time.sleeps[:6] == [2, 4, 8, 16, 30, 30]  # nothing new: back off to the cap
    assert result.polls == len(time.sleeps) + 1 < 12 * 3600 / 30 + 6


def test_follow_waits_for_a_log_that_is_not_there_yet_and_stops_when_told():
    memory = MemoryBucket({})
    time = FakeClock([lambda: memory.objects.update({TRAIN_KEY: b"late\n"})])
    printed: list[str] = []
    notes: list[str] = []

    result = follow(memory, RUN, "train", printed.append, notes.append, max_wait_s=10,
                    poll_s=2, clock=time.clock, sleep=time.sleep)

    assert printed == ["late\n"] and result.seen and result.reason == "deadline"
    assert notes == [f"(waiting for logs/train.log of run {RUN}: not in the bucket yet, no "
                     "status from the run yet; the runner's heartbeat uploads it every "
                     "heartbeat_s once training runs; Ctrl-C stops)"]


def test_follow_says_what_it_waits_for_then_a_progress_line_every_half_minute(
        runner_output):
    """The run reports (its status is there) but its log is not uploaded yet: following is
    never silent while it waits."""
    status = json.loads((runner_output("running", RUN) / "status.json").read_text())
    status["phase"] = "data"
    memory = MemoryBucket({f"runs/{RUN}/status.json": json.dumps(status).encode()})
    time = FakeClock()
    notes: list[str] = []

    result = follow(memory, RUN, "train", lambda text: None, notes.append, max_wait_s=120,
                    poll_s=2, max_poll_s=30, clock=time.clock, sleep=time.sleep)

    assert result.reason == "deadline" and not result.seen
    assert notes[0].startswith(f"(waiting for logs/train.log of run {RUN}: not in the bucket "
                               "yet, the run is running (data);")
    # polls back off to every 30 s: a line at the first poll 30 s or more after the last
    assert notes[1:] == [f"(still waiting for logs/train.log: {s} s so far, the run is "
                         "running (data))" for s in (58, 88, 118)]


def test_follow_mentions_its_aside_once_in_a_progress_line():
    time = FakeClock()
    notes: list[str] = []

    follow(MemoryBucket({}), RUN, "train", lambda text: None, notes.append, max_wait_s=120,
           poll_s=2, max_poll_s=30, clock=time.clock, sleep=time.sleep, aside="look there")

    assert "look there" not in notes[0]
    assert notes[1] == "(still waiting for logs/train.log: 58 s so far, no status from the " \
        "run yet; look there)"
    assert [n for n in notes if "look there" in n] == [notes[1]]


def test_follow_gives_up_on_a_bucket_that_keeps_failing(address, publish):
    publish("running", RUN)
    time = FakeClock()
    notes: list[str] = []
    with pytest.raises(ApiError, match="master key"):
        follow(Bucket(address, WRONG_B2), RUN, "train", lambda text: None, notes.append,
               clock=time.clock, sleep=time.sleep)
    assert len(notes) == 2  # two retries announced, the third failure raised


def test_logs_follow_from_the_command_line_ends_with_the_run(cli_env, publish, capsys,
                                                             monkeypatch):
    publish("finished", RUN)
    time = FakeClock()
    monkeypatch.setattr(logs_command, "follow", functools.partial(
        follow, clock=time.clock, sleep=time.sleep))

    assert main(["logs", RUN, "--follow", "--max-wait", "10m"]) == 0

    captured = capsys.readouterr()
    assert captured.out == TRAIN_LOG
    assert "(run succeeded; log complete)" in captured.err


@pytest.mark.parametrize(("shown", "text", "expected"), [
    ("", "a\nb\n", ("a\nb\n", False)),
    ("a\nb\n", "a\nb\nc\n", ("c\n", False)),
    ("a\nb\n", "a\nb\n", ("", False)),
    # the 16 MiB window moved on: the overlap is found, nothing is printed twice
    ("".join(f"line {i:03d}\n" for i in range(40)),
     "".join(f"line {i:03d}\n" for i in range(10, 45)),
     ("".join(f"line {i:03d}\n" for i in range(40, 45)), False)),
    # the final upload replaced the tail with the whole (longer) log
    ("".join(f"line {i:03d}\n" for i in range(10, 40)),
     "".join(f"line {i:03d}\n" for i in range(0, 42)),
     ("line 040\nline 041\n", False)),
    # shrank, or replaced by something else: rotated
    ("x" * 100, "something else entirely\n", ("something else entirely\n", True)),
])
def test_new_part(shown, text, expected):
    assert new_part(shown, text) == expected
