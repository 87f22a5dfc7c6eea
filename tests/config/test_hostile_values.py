"""Hostile values in the configuration, its overrides and the numeric flags: a one-line
error naming the file or flag, never a traceback, never a value quietly ignored."""

from __future__ import annotations

import argparse
import time

import pytest

from launcher.cli import main
from launcher.commands.runcommon import parse_duration, positive_int, positive_number
from launcher.config import add_override_flags, apply_overrides, load_stage, overrides_from_args
from launcher.errors import ConfigError

from .conftest import CONFIGS, write_stage

NON_FINITE = ["nan", "NaN", "inf", "-inf", "Infinity"]


def _overrides(*argv: str):
    parser = argparse.ArgumentParser()
    add_override_flags(parser)
    return overrides_from_args(parser.parse_args(list(argv)))


@pytest.mark.parametrize("flag", ["--max-hours", "--max-cost", "--max-price"])
@pytest.mark.parametrize("value", NON_FINITE)
def test_a_non_finite_override_is_refused_naming_the_flag(flag, value):
    stage = load_stage(CONFIGS, "smoke")
    with pytest.raises(ConfigError, match=f"^{flag}: expected number, got .*not a finite"):
        apply_overrides(stage, _overrides(f"{flag}={value}"))


@pytest.mark.parametrize(("field", "value"), [("max_hours", ".nan"), ("max_cost_usd", ".inf"),
                                              ("max_price_per_hour", "-.inf")])
def test_a_non_finite_number_in_a_stage_file_is_refused(config_dir, field, value):
    path = write_stage(config_dir, "hostile", f"name: hostile\n{field}: {value}\n")
    with pytest.raises(ConfigError) as caught:
        load_stage(config_dir, "hostile")
    assert caught.value.message.startswith(f"{path}: field {field}: expected number")
    assert "not a finite number" in caught.value.message


@pytest.mark.parametrize("read", [positive_number, positive_int, parse_duration])
@pytest.mark.parametrize("text", NON_FINITE + ["-1", "0", "", "1e400", "ten"])
def test_numeric_flag_types_refuse_what_is_not_a_positive_finite_number(read, text):
    with pytest.raises(argparse.ArgumentTypeError, match="expected"):
        read(text)


@pytest.mark.parametrize("argv", [
    ["offers", "--min-vram", "nan"], ["offers", "--max-price", "inf"],
    ["offers", "--gpu-count", "-2"], ["logs", "some-run-20260101-000000", "--max-wait", "nan"],
])
def test_the_command_line_refuses_them_before_any_call(argv, capsys, monkeypatch):
    monkeypatch.setenv("VULTR_API_URL", "http://127.0.0.1:9/v2")  # never reached
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "expected" in err and "Traceback" not in err


def _bomb(levels: int = 7) -> str:
    lines = ["name: hostile", "regions: &a0 [sjc, sjc, sjc, sjc, sjc, sjc, sjc, sjc, sjc]"]
    for level in range(1, levels):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"x{level}: &a{level} [{refs}]")
    lines.append(f"gpu_profiles: [{{min_vram_gb: 40, extra: *a{levels - 1}}}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("text", "says"), [
    (_bomb(), "aliases expand to more than 100,000 values"),
    ("name: hostile\nregions: &r [sjc, *r]\n", "an alias refers to a value that holds it"),
    ("name: hostile\nx: " + "[" * 60 + "]" * 60 + "\n", "nested deeper than 50 levels"),
    ("name: hostile\nx: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than YAML can"),
])
def test_a_yaml_bomb_is_refused_quickly_and_in_one_line(config_dir, text, says):
    write_stage(config_dir, "hostile", text)
    started = time.monotonic()
    with pytest.raises(ConfigError, match=says):
        load_stage(config_dir, "hostile")
    assert time.monotonic() - started < 30  # a generous bound: unbounded means minutes


def test_a_stage_file_that_is_not_utf8_names_the_byte(config_dir):
    path = config_dir / "stages" / "hostile.yaml"
    path.write_bytes(b"name: host\xffile\n")
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 10: b'\\xff'\)"):
        load_stage(config_dir, "hostile")
    assert str(path) in str(pytest.raises(ConfigError, load_stage, config_dir, "hostile").value)


def test_an_oversized_stage_file_is_refused_unread(config_dir):
    write_stage(config_dir, "hostile", "name: hostile\n" + "# padding\n" * 120_000)
    with pytest.raises(ConfigError, match="larger than 1,048,576 bytes"):
        load_stage(config_dir, "hostile")


@pytest.mark.parametrize("text", ["?", "null: 1\n", "1: x\n[a]: b\n", "true: 1\n"])
def test_a_key_that_is_not_text_is_named_as_an_unknown_field(text, config_dir):
    """Found by tests/test_hostile_properties.py: YAML's ``?`` is the mapping {None: None}."""
    write_stage(config_dir, "hostile", text)
    with pytest.raises(ConfigError, match="unknown field|not valid YAML"):
        load_stage(config_dir, "hostile")
