"""Random and hostile values thrown at the config loader, the overrides and every command's
flags. Whatever comes in, the outcome is a stage or a ConfigError (the loader), or an exit
status from the documented set with no traceback (a command), and nothing exists at the
emulated provider afterwards.

Examples are derandomised (the same ones every run, so CI cannot flake);
``HYPOTHESIS_EXAMPLES=2000`` explores further by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.keys import FAKE_VULTR_KEY

from launcher.cli import EXIT_CODES, build_parser, main
from launcher.commands import demo as demo_command
from launcher.config.loader import load_stage
from launcher.demo import DemoReport
from launcher.demo.bed import check_inputs
from launcher.emulator import cli as emulator_cli
from launcher.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", "25"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])

# Values people and scripts really pass by mistake, and ones chosen to break parsers.
HOSTILE = ["nan", "NaN", "inf", "-inf", "1e309", "-1", "0", "0.0", "1e-9", "-0",
           "99999999999999999999999", "0x10", "1_000", "", " ", "-", "--", "\x1b[2J\x1b]0;t\x07",
           "\u00e9\u4e2d", "\udcff", "a" * 3000, "../../etc/passwd", "/dev/zero", "/dev/full",
           "/", ".", "%s%n", "{}", "[x", "*", "$(id)", "example", "diffusion", "sjc",
           "lax,,sjc", "example-20261129-100000", "launcher-cache-x", "vcg-a100-1c-6g-4vram",
           "12h", "30m", "2d", "0s", "1e400h"]
# Argv words never hold NUL (exec's argv are C strings), and their only lone surrogates are
# the undecodable bytes Python maps to U+DC80-U+DCFF (as "\udcff" above).
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=30)
VALUES = st.one_of(st.sampled_from(HOSTILE), TEXT, st.integers().map(str),
                   st.floats().map(repr))
EXIT_STATUSES = {code for code, _ in EXIT_CODES}


def commands() -> dict[str, argparse.ArgumentParser]:
    """Every command (``config show`` as one), each with its own parser."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, words: tuple[str, ...]) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found[" ".join(words)] = parser
        for action in subs:
            for name, child in action.choices.items():
                walk(child, (*words, name))

    walk(build_parser(), ())
    return found


COMMANDS = commands()


@st.composite
def argv_for(draw: st.DrawFn, name: str) -> list[str]:
    """The command's words, some of its options (each with a hostile value), its
    positionals. ``run --yes`` is left out: a run that is let to launch creates on purpose."""
    parser = COMMANDS[name]
    options = [a for a in parser._actions if a.option_strings and a.dest != "help"
               and not (name == "run" and a.dest == "yes")]
    argv = name.split()
    for action in draw(st.lists(st.sampled_from(options), max_size=5, unique_by=id)):
        flag = draw(st.sampled_from(action.option_strings))
        if action.nargs == 0:
            argv.append(flag)
        elif action.choices and draw(st.booleans()):
            argv += [flag, draw(st.sampled_from(sorted(action.choices)))]
        else:
            value = draw(VALUES)
            argv += [f"{flag}={value}"] if draw(st.booleans()) else [flag, value]
    for action in parser._actions:
        positional = not action.option_strings and action.nargs != argparse.REMAINDER
        if positional and (action.nargs is None or draw(st.booleans())):
            argv.append(draw(VALUES))
    return argv


@pytest.fixture
def hostile_env(emulator, tmp_path, monkeypatch):
    """An empty working folder, the emulator as Vultr, configs given by LAUNCHER_CONFIG_DIR;
    no bucket settings (a command that needs the bucket says so)."""
    work = tmp_path / "work"
    work.mkdir()
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    monkeypatch.chdir(work)
    for variable in [v for v in os.environ if v.startswith(("B2_", "WANDB_", "VULTR_"))]:
        monkeypatch.delenv(variable)
    monkeypatch.setenv("VULTR_API_URL", emulator.url)
    monkeypatch.setenv("VULTR_KEY", FAKE_VULTR_KEY)
    monkeypatch.setenv("LAUNCHER_CONFIG_DIR", str(configs))
    monkeypatch.setenv("LAUNCHER_ENV_FILE", str(tmp_path / "absent.env"))
    monkeypatch.setenv("COLUMNS", "100")
    # `launcher emulator` serves until a signal: here it stops as soon as it has started.
    monkeypatch.setattr(emulator_cli, "_install_stop_signals", _stop_at_once)
    # `launcher demo` walks a whole run (half a minute; tests/demo walks it): here it stops
    # once its own input checks have passed.
    monkeypatch.setattr(demo_command, "run_demo", _demo_inputs_only)
    return emulator


def _demo_inputs_only(example_dir, config_dir, *, provider="vultr", **options):
    check_inputs(example_dir, config_dir)
    return DemoReport(provider=provider, state="succeeded", left_over=0)


def _stop_at_once(stop):
    stop.set()
    return {}


def run_command(argv: list[str]) -> tuple[int, str]:
    """``main(argv)`` in this process: its exit status (argparse's too) and its stderr."""
    # Encoded as a terminal's streams are: stdout strict, stderr backslashreplace.
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: usage errors (2) and --help (0)
            code = exc.code if isinstance(exc.code, int) else 2
    err.flush()
    return code, err.buffer.getvalue().decode("utf-8")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_no_flag_value_ends_in_a_traceback_or_creates_anything(name, hostile_env):
    @PROPERTY
    @given(argv=argv_for(name))
    def check(argv):
        code, err = run_command(argv)
        assert "Traceback" not in err, f"{argv!r}:\n{err}"
        assert code in EXIT_STATUSES, f"{argv!r} exited {code}:\n{err}"
        if code != 0:
            assert err.strip(), f"{argv!r} failed without a word"
        store = hostile_env.state
        assert store.list_instances(None, None, None) == [] and store.list_blocks() == [], argv

    check()


# -- the config loader ---------------------------------------------------------------------

LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), TEXT,
                   st.sampled_from([math.nan, math.inf, -math.inf, 10**30, -(10**30)]),
                   st.sampled_from(HOSTILE))
NODES = st.recursive(LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)), max_leaves=12)


def stage_document() -> dict:
    return yaml.safe_load((ROOT / "configs" / "stages" / "example.yaml").read_text())


def paths(node, prefix=()):
    """Every key path into ``node``, the root included."""
    yield prefix
    items = node.items() if isinstance(node, dict) else (
        enumerate(node) if isinstance(node, list) else ())
    for key, child in items:
        yield from paths(child, (*prefix, key))


@st.composite
def mutated_stage(draw: st.DrawFn) -> str:
    """The example stage with one value anywhere in it replaced by a random tree, or the
    file's text cut or spliced: what a hand edit gone wrong looks like."""
    document = stage_document()
    where = draw(st.sampled_from(list(paths(document))))
    if not where:
        document = draw(NODES)
    else:
        parent = document
        for key in where[:-1]:
            parent = parent[key]
        parent[where[-1]] = draw(NODES)
    text = yaml.safe_dump(document, allow_unicode=True)
    cut = draw(st.integers(0, len(text)))
    return draw(st.sampled_from([text, text[:cut], text[:cut] + draw(TEXT) + text[cut:]]))


@pytest.fixture
def config_copy(tmp_path):
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    return configs


@PROPERTY
@given(text=mutated_stage())
def test_a_hand_edited_stage_file_is_a_stage_or_a_config_error(text, config_copy):
    (config_copy / "stages" / "example.yaml").write_text(text, encoding="utf-8",
                                                          errors="surrogateescape")
    try:
        load_stage(config_copy, "example")
    except ConfigError as exc:
        assert str(exc) and "Traceback" not in str(exc)


@PROPERTY
@given(data=st.binary(max_size=400))
def test_any_bytes_as_a_stage_file_are_a_stage_or_a_config_error(data, config_copy):
    (config_copy / "stages" / "example.yaml").write_bytes(data)
    with contextlib.suppress(ConfigError):
        load_stage(config_copy, "example")
