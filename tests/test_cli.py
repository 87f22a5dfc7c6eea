"""The command line end to end: version, help, the error funnel and offers."""

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
    for command in ("offers", "demo", "emulator"):
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
    monkeypatch.setattr("launcher.cli.build_parser", lambda *a: _with_handler(parser, handler))
    assert main(["offers"]) == code
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
    assert main(["offers"]) == 2
    assert "plain http" in capsys.readouterr().err


def test_offers_as_json_against_the_emulator(emulator, monkeypatch, capsys):
    monkeypatch.setenv("VULTR_API_URL", emulator.url)  # public endpoints: no key needed
    assert main(["offers", "--min-vram", "40", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = data["candidates"]
    assert rows and all(r["vram_per_gpu_gb"] >= 40 for r in rows)
    for region in ("sjc", "sea", "lax"):
        prices = [r["price_per_hour"] for r in rows if r["region"] == region]
        assert prices == sorted(prices)
    assert [r["region"] for r in rows] == sorted(
        (r["region"] for r in rows), key=["sjc", "sea", "lax"].index)
    assert not any(r["plan"] == "vcg-a100-6c-60g-40vram" for r in rows)  # a vGPU slice
    assert (data["pick"]["plan"], data["pick"]["region"]) == (rows[0]["plan"], "sjc")
    assert emulator.mutations() == []


def test_offers_table_and_an_unknown_region(emulator, monkeypatch, capsys):
    monkeypatch.setenv("VULTR_API_URL", emulator.url)
    assert main(["offers", "--regions", "sea,lax"]) == 0
    assert "GPU offers" in capsys.readouterr().out
    assert main(["offers", "--regions", "sea,atlantis"]) == 2
    assert "unknown region id(s): atlantis" in capsys.readouterr().err


def test_help_loads_no_command_module_nor_the_heavy_libraries():
    import subprocess
    import sys

    probe = ("import sys\nfrom launcher.cli import main\ntry:\n    main(['--help'])\n"
             "except SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m.startswith('launcher.commands.')"
             " or m.split('.')[0] in ('requests', 'rich', 'jsonschema', 'yaml')))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "offers" in done.stdout and "GPU plans" in done.stdout  # every summary listed


@pytest.mark.parametrize(("argv", "command"), [
    (["offers", "--json"], "offers"), (["-v", "--env-file", "run", "status"], "status"),
    (["--env-file=x", "gc"], "gc"), (["--version"], ""), (["nope"], ""), ([], ""),
])
def test_the_command_is_found_past_global_options(argv, command):
    from launcher.cli import chosen_command

    assert chosen_command(argv) == command
