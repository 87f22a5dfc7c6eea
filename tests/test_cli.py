"""The command line end to end: version, help, the error funnel, plans and the demo."""

from __future__ import annotations

import json

import pytest

from launcher import __version__
from launcher.cli import build_parser, main
from launcher.errors import AuthError, ConfigError


def test_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"launcher {__version__}"


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("plans", "demo", "emulator"):
        assert command in out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: launcher" in capsys.readouterr().out


@pytest.mark.parametrize(("error", "code"), [
    (ConfigError("configs/x.yaml: field gpu.min_vram_gb: expected an integer"), 2),
    (AuthError("Invalid API token.", method="GET", path="/account", status=401, hint="IP"), 3),
])
def test_the_error_funnel_prints_one_clear_line(monkeypatch, capsys, error, code):
    def handler(args):
        raise error

    parser = build_parser()
    monkeypatch.setattr("launcher.cli.build_parser", lambda: _with_handler(parser, handler))
    assert main(["plans"]) == code
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and "Traceback" not in captured.err
    assert error.message in captured.err.replace("\n", " ")


def _with_handler(parser, handler):
    parser.set_defaults(handler=handler)
    for action in parser._subparsers._group_actions:
        for sub in action.choices.values():
            sub.set_defaults(handler=handler)
    return parser


def test_a_plain_http_api_url_elsewhere_is_refused_before_any_call(monkeypatch, capsys):
    monkeypatch.setenv("VULTR_API_URL", "http://api.example.com/v2")
    assert main(["plans"]) == 2
    assert "plain http" in capsys.readouterr().err


def test_plans_as_json_against_the_emulator(emulator, monkeypatch, capsys):
    monkeypatch.setenv("VULTR_API_URL", emulator.url)  # public endpoints: no key needed
    assert main(["plans", "--min-vram", "40", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["gpu_vram_gb"] >= 40 for r in rows)
    assert [r["monthly_cost"] for r in rows] == sorted(r["monthly_cost"] for r in rows)
    a100 = next(r for r in rows if r["id"] == "vcg-a100-6c-60g-40vram")
    assert "sjc" not in a100["in_stock"] and "sea" in a100["in_stock"]
    assert emulator.mutations() == []


def test_plans_table_and_an_unknown_region(emulator, monkeypatch, capsys):
    monkeypatch.setenv("VULTR_API_URL", emulator.url)
    assert main(["plans", "--regions", "sea,lax"]) == 0
    assert "GPU plans" in capsys.readouterr().out
    assert main(["plans", "--regions", "sea,atlantis"]) == 2
    assert "unknown region id(s): atlantis" in capsys.readouterr().err


def test_the_demo_launches_and_leaves_nothing_behind(capsys):
    assert main(["demo", "--instant", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in report["steps"]] == [
        "offer", "snapshot", "volume", "instance", "attach", "teardown"]
    assert report["region"] == "sjc" and report["left_over"] == 0
    assert report["mutating_calls"] == 5  # volume, instance, attach, and their two deletes
