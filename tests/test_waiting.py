"""The shared wait: progress lines while a call is outstanding, and a deadline that ends it."""

from __future__ import annotations

import threading
import time

import pytest

from launcher import waiting
from launcher.waiting import ProgressLines, Watch, endpoint


def test_a_watched_call_says_it_is_still_waiting_every_few_seconds():
    lines: list[str] = []
    with Watch("127.0.0.1:8765 (GET /instances)", ProgressLines(0.05, lines.append)):
        time.sleep(0.28)
    assert 4 <= len(lines) <= 6
    assert all(line.startswith("still waiting for 127.0.0.1:8765 (GET /instances), ")
               and line.endswith(" s") for line in lines)


def test_a_quick_call_says_nothing_and_starts_no_thread_of_its_own():
    lines: list[str] = []
    with Watch("x", ProgressLines(5.0, lines.append)):
        pass
    before = threading.active_count()  # the one watching thread, started by now
    for _ in range(50):
        with Watch("x", ProgressLines(5.0, lines.append)):
            pass
    assert lines == [] and threading.active_count() == before


def test_the_deadline_calls_back_once_and_disarm_stops_it():
    fired: list[float] = []
    with Watch("x", ProgressLines(5.0, lambda line: None)) as watch:
        watch.arm(0.05, lambda: fired.append(time.monotonic()))
        time.sleep(0.2)
        assert watch.expired and len(fired) == 1
        watch.arm(0.05, lambda: fired.append(time.monotonic()))
        watch.disarm()
        time.sleep(0.15)
    assert len(fired) == 1


def test_lines_go_to_stderr_without_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(waiting, "PROGRESS_EVERY_S", 0.05)
    with Watch("the bucket at 127.0.0.1:9000 (list s3://b/runs/)"):
        time.sleep(0.12)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "still waiting for the bucket at 127.0.0.1:9000 (list s3://b/runs/), 0 s\n" \
        in captured.err


@pytest.mark.parametrize(("url", "expected"), [
    ("https://api.vultr.com/v2", "api.vultr.com:443"),
    ("http://127.0.0.1:8765/v2", "127.0.0.1:8765"),
    ("http://localhost/v2", "localhost:80"),
    ("http://[::1]:9000", "[::1]:9000"),
    ("https://s3.us-west-004.backblazeb2.com", "s3.us-west-004.backblazeb2.com:443"),
])
def test_endpoint_is_host_and_port(url, expected):
    assert endpoint(url) == expected
