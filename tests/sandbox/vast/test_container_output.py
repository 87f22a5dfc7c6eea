"""The sandbox's ``output`` callback: the onstart's stdout and stderr, line by line as they
arrive, cut to a bounded length; ``console.log`` keeps everything; a callback that raises
ends nothing but its own calls."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from launcher.sandbox.console import OUTPUT_LINE_MAX
from launcher.sandbox.container import ContainerRequest, ContainerSandbox
from sandbox.containerbed import wait_until

# "early" comes out long before the onstart ends: it must not wait for the exit.
SLOW = "echo early\nsleep 6\necho late >&2\n"
FAST = "echo early\necho late >&2\n"
LONG = f"head -c {OUTPUT_LINE_MAX * 3} /dev/zero | tr '\\0' x; echo\necho after\n"


class Lines:
    """A callback recording (instance id, text); ``fail`` makes it raise instead."""

    def __init__(self, fail: bool = False) -> None:
        self.fail, self.seen = fail, []
        self.lock = threading.Lock()

    def __call__(self, instance_id: str, text: str) -> None:
        if self.fail:
            raise RuntimeError("the log is gone")
        with self.lock:
            self.seen.append((instance_id, text))

    def texts(self) -> list[str]:
        with self.lock:
            return [text for _, text in self.seen]


@pytest.fixture
def make(sandbox_root) -> Iterator:
    made: list[ContainerSandbox] = []

    def build(output: Lines, log: list[str] | None = None) -> ContainerSandbox:
        made.append(ContainerSandbox(sandbox_root, output=output,
                                     log=(log if log is not None else []).append))
        return made[-1]

    yield build
    for sandbox in made:
        sandbox.close()


def test_lines_reach_the_callback_as_they_are_printed(make):
    lines = Lines()
    sandbox = make(lines)
    sandbox.start(ContainerRequest("5", SLOW))
    assert wait_until(lambda: "early" in lines.texts(), 10)
    assert sandbox.view("5").state == "starting"  # the onstart still runs
    assert sandbox.wait_onstart("5", 30).state == "running"
    assert lines.seen == [("5", "early"), ("5", "late")]
    assert (sandbox.root / "5/console.log").read_text() == "early\nlate\n"


def test_a_long_line_is_cut_for_the_callback_and_kept_whole_in_the_console(make):
    lines = Lines()
    sandbox = make(lines)
    sandbox.start(ContainerRequest("6", LONG))
    assert sandbox.wait_onstart("6", 30).state == "running"
    assert lines.texts() == ["x" * OUTPUT_LINE_MAX, "after"]
    assert (sandbox.root / "6/console.log").read_text() == "x" * OUTPUT_LINE_MAX * 3 \
        + "\nafter\n"


def test_a_callback_that_raises_leaves_the_console_and_the_onstart_alone(make):
    log: list[str] = []
    sandbox = make(Lines(fail=True), log)
    sandbox.start(ContainerRequest("7", FAST))
    assert sandbox.wait_onstart("7", 30).state == "running"
    assert (sandbox.root / "7/console.log").read_text() == "early\nlate\n"
    failed = [line for line in log if "output callback failed" in line]
    assert failed == ["container 7: output callback failed (RuntimeError: the log is gone); "
                      "console.log only from here"]
