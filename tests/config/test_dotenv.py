"""The .env reader: what a person writes in one, and the mistakes, named by file and line
without ever echoing the line (it may hold a key)."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.config import parse_dotenv, read_env_file
from launcher.errors import ConfigError


@pytest.mark.parametrize(("text", "expected"), [
    ("A=1\n", {"A": "1"}),
    ("export A=1\n", {"A": "1"}),
    ("export\tA=1\n", {"A": "1"}),
    ("export=1\n", {"export": "1"}),
    ("  A = spaced value  \n", {"A": "spaced value"}),
    ("# a comment\n\n   # indented comment\nA=1\n", {"A": "1"}),
    ("A=value # a comment\n", {"A": "value"}),
    ("A=value#not-a-comment\n", {"A": "value#not-a-comment"}),
    ("A= # only a comment\n", {"A": ""}),
    ("A=#literal\n", {"A": "#literal"}),
    ("A=\n", {"A": ""}),
    ("A=x=y=z\n", {"A": "x=y=z"}),
    ("A='single $HOME # kept'\n", {"A": "single $HOME # kept"}),
    ('A="double $HOME"\n', {"A": "double $HOME"}),
    ('A="esc \\" \\\\ \\n \\t \\q"\n', {"A": 'esc " \\ \n \t \\q'}),
    ('A="quoted" # comment\n', {"A": "quoted"}),
    ("A=${B}\n", {"A": "${B}"}),
    ("A=1\nA=2\n", {"A": "2"}),
    ("A=1\r\nB=2\r\n", {"A": "1", "B": "2"}),
    ("\ufeffA=1\n", {"A": "1"}),
    ("", {}),
])
def test_what_a_dotenv_file_may_say(text, expected):
    assert parse_dotenv(text) == expected


@pytest.mark.parametrize(("text", "line", "expected"), [
    ("A=1\nnot an assignment\n", 2, "expected NAME=value"),
    ("1A=secret-value\n", 1, "expected NAME=value"),
    ("MY KEY=secret-value\n", 1, "expected NAME=value"),
    ("=secret-value\n", 1, "expected NAME=value"),
    ("export A\n", 1, "expected NAME=value"),
    ("A='secret-value\n", 1, "the ' quote is not closed on this line"),
    ('A="secret-value\nB=2"\n', 1, 'the " quote is not closed on this line'),
    ('A="secret-value" trailing\n', 1, "unexpected text after the closing"),
    ("A='secret-value''s'\n", 1, "unexpected text after the closing ' quote"),
])
def test_a_bad_line_names_file_and_line_but_not_its_text(text, line, expected):
    with pytest.raises(ConfigError) as raised:
        parse_dotenv(text, "conf/.env")
    message = str(raised.value)
    assert message.startswith(f"conf/.env:{line}: ") and expected in message
    assert "secret-value" not in message and "\n" not in message


def test_reading_a_file(tmp_path: Path):
    path = tmp_path / ".env"
    assert read_env_file(path) is None
    path.write_text("A=1\n")
    assert read_env_file(path) == {"A": "1"}
    path.write_bytes(b"A=\xff\n")
    with pytest.raises(ConfigError, match=r"\.env: not UTF-8 text"):
        read_env_file(path)
    with pytest.raises(ConfigError, match="expected a regular file of NAME=value lines, not "
                       "a directory"):
        read_env_file(tmp_path)
