"""The one confirmation prompt (``launcher.commands.runcommon.confirm``) that ``run`` and
``teardown`` ask through: ``--yes`` asks nothing, no terminal is a refusal in each command's
words (exit 2), no is the default, and Ctrl-D (end of input) is a no."""

from __future__ import annotations

import argparse
import io
import sys

import pytest
from rich.console import Console

from launcher.cli import main
from launcher.commands import run as run_command
from launcher.commands import runcommon
from launcher.errors import ConfigError
from runs.conftest import RUN, make_run


@pytest.fixture
def terminal(monkeypatch):
    """A terminal on stdin whose typed text the test sets; the prompt goes to a string."""
    def typed(text: str) -> Console:
        monkeypatch.setattr(sys, "stdin", io.StringIO(text))
        monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
        return Console(file=io.StringIO(), force_terminal=False)
    return typed


@pytest.mark.parametrize(("typed", "answer"), [("y\n", True), ("YES\n", True), ("n\n", False),
                                               ("no\n", False), ("\n", False), ("", False),
                                               ("maybe\ny\n", True)])
def test_the_answer_no_is_the_default_and_end_of_input_is_a_no(terminal, typed, answer):
    console = terminal(typed)
    assert runcommon.confirm("Delete 2 resource(s)?", False, console=console) is answer
    assert "Delete 2 resource(s)?" in console.file.getvalue()


def test_yes_asks_nothing_even_without_a_terminal(monkeypatch):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    monkeypatch.setattr(runcommon.Confirm, "ask", lambda *a, **k: pytest.fail("asked"))
    assert runcommon.confirm("Delete?", True) is True


def test_without_a_terminal_each_command_refuses_in_its_own_words(monkeypatch):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    with pytest.raises(ConfigError, match="this deletes resources: confirm with --yes"):
        runcommon.confirm("Delete?", False)
    monkeypatch.setattr(run_command, "show_plan", lambda console, plan: None)
    args = argparse.Namespace(json=False, yes=False)
    with pytest.raises(ConfigError, match="no terminal to confirm the launch on: pass --yes"):
        run_command.confirm(object(), args, Console(), Console())


def test_run_and_teardown_ask_through_the_one_helper(monkeypatch, cli_env, provider):
    asked: list[tuple[str, bool]] = []

    def confirm(question: str, yes: bool, **options) -> bool:
        asked.append((question, yes))
        return False

    monkeypatch.setattr(runcommon, "confirm", confirm)
    monkeypatch.setattr(run_command, "show_plan", lambda console, plan: None)
    assert run_command.confirm(object(), argparse.Namespace(json=False, yes=True), Console(),
                               Console()) is False
    make_run(provider, RUN)
    assert main(["teardown", RUN]) == 1  # answered no: nothing deleted
    assert asked == [("launch it?", True), (f"Delete 1 resource(s) of run {RUN}?", False)]
