"""systemd units from data, and the values they refuse."""

from __future__ import annotations

import pytest

from launcher.render.units import UnitError, unit_text


def test_sections_become_unit_text_in_order():
    text = unit_text({"Unit": {"Description": "d", "After": "a.target b.service"},
                      "Service": {"Type": "simple",
                                  "ExecStart": ["/usr/bin/python3", "/opt/r.pyz", "supervise"]}})
    assert text == ("[Unit]\nDescription=d\nAfter=a.target b.service\n\n"
                    "[Service]\nType=simple\nExecStart=/usr/bin/python3 /opt/r.pyz supervise\n")


@pytest.mark.parametrize(("sections", "problem"), [
    ({"Unit": {"Description": "two\nlines"}}, "one trimmed"),
    ({"Unit": {"Description": "ExecStart=evil\r"}}, "one trimmed"),
    ({"Unit": {"Description": "100%"}}, "'%'"),
    ({"Unit": {"Description": "continued \\"}}, "trailing backslash"),
    ({"Unit": {"Description": " padded"}}, "one trimmed"),
    ({"Unit": {"Description": ""}}, "one trimmed"),
    ({"Service": {"Restart": False}}, "expected a string"),
    ({"Service": {"TimeoutSec": 5}}, "expected a string"),
    ({"Service": {"ExecStart": ["/bin/sh", "-c", "rm -rf /"]}}, "argv item"),
    ({"Service": {"ExecStart": ["/bin/echo", "$HOME"]}}, "argv item"),
    ({"Service": {"ExecStart": ["/bin/echo", "it's"]}}, "argv item"),
    ({"Service": {"ExecStart": []}}, "must not be empty"),
    ({"Service": {"Bad Key": "x"}}, "not a valid systemd name"),
    ({"Bad]Section": {"A": "x"}}, "not a valid systemd name"),
    ({"Unit": {}}, "non-empty mapping"),
    ({}, "no sections"),
])
def test_unsafe_values_are_refused(sections, problem):
    with pytest.raises(UnitError, match="x.service") as raised:
        unit_text(sections, unit="x.service")
    assert problem in str(raised.value)
