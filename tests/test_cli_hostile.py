"""What used to end in a traceback: each is one line on stderr, a non-zero exit, and nothing
created."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from launcher import cli
from launcher.cli import main
from launcher.commands import run as run_command
from launcher.commands import runcommon
from launcher.emulator.cli import port_number
from launcher.vultr import client as client_module

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("text", ["99999", "-1", "65536", "http"])
def test_the_emulator_refuses_a_port_out_of_range(text, capsys):
    with pytest.raises(argparse.ArgumentTypeError, match="expected a port from 0 to 65535"):
        port_number(text)
    with pytest.raises(SystemExit) as caught:
        main(["emulator", f"--port={text}"])
    assert caught.value.code == 2 and "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("key", ["k\u00e9y-with-latin-1", "k\u4e2d", "two words", "tab\tkey"])
def test_a_key_that_cannot_travel_in_a_header_is_named_not_shown(key, emulator, monkeypatch,
                                                               capsys):
    monkeypatch.setenv("VULTR_API_URL", emulator.url)
    monkeypatch.setenv("VULTR_KEY", key)
    assert main(["offers"]) == 2
    err = capsys.readouterr().err
    assert "VULTR_KEY (from the environment): character" in err and "not printable" in err
    assert key not in err and emulator.events == []


def test_a_list_item_of_the_wrong_shape_is_an_api_error(emulator, monkeypatch, capsys):
    monkeypatch.setenv("VULTR_API_URL", emulator.url)

    def paginate(self, path, key, params=None, auth=True):
        return iter([None, 3])

    monkeypatch.setattr(client_module.VultrHttp, "paginate", paginate)
    assert main(["offers"]) == 3
    err = capsys.readouterr().err
    assert "where a Region object belongs" in err and "Traceback" not in err


def test_ctrl_d_at_the_confirmation_is_a_no(monkeypatch):
    class Console:
        printed = 0

        def print(self, *args, **kwargs):
            Console.printed += 1

    def eof(*args, **kwargs):
        raise EOFError

    monkeypatch.setattr(runcommon.Confirm, "ask", eof)  # the one prompt helper's
    monkeypatch.setattr(run_command, "show_plan", lambda console, plan: None)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    args = argparse.Namespace(json=False, yes=False)
    assert run_command.confirm(object(), args, Console(), Console()) is False


def test_ctrl_c_while_the_parser_loads_is_interrupted_not_a_traceback(monkeypatch, capsys):
    def interrupted(only=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert main(["offers"]) == 130
    assert capsys.readouterr().err.strip() == "interrupted"


def test_stdout_on_a_full_device_is_one_line(emulator):
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "launcher", "offers", "--all"],
                              env={**os.environ, "VULTR_API_URL": emulator.url},
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: cannot write the output: No space left on device"


def test_a_closed_pipe_ends_quietly(emulator):
    """``launcher offers --all | head -1``: the reader is gone before the table is."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "launcher", "offers", "--all"],
                              env={**os.environ, "VULTR_API_URL": emulator.url},
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert done.returncode == 1 and done.stderr == ""


def test_a_path_too_long_for_the_system_is_named_in_one_line(tmp_path, monkeypatch, capsys):
    """Found by tests/test_hostile_properties.py: the OS refuses the name itself."""
    monkeypatch.chdir(tmp_path)
    long_name = "a" * 3000
    assert main(["demo", "--example-dir", long_name]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "File name too long" in err
    assert len(err.strip().splitlines()) == 1 and "(3" in err  # shortened, with its length


def test_a_double_dash_glued_to_a_flag_is_refused_not_handed_on(capsys):
    """argparse before 3.12 turns ``--port=--`` into an empty list, past the flag's type."""
    with pytest.raises(SystemExit) as caught:
        main(["emulator", "--port=--"])
    err = capsys.readouterr().err
    assert caught.value.code == 2 and "'--' is not a value for --port" in err


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_named_as_a_file_is_refused_unread(device, capsys):
    """Found by tests/test_hostile_properties.py: `images --manifest /dev/zero` read until
    the machine ran out of memory."""
    assert main(["images", "--manifest", device]) == 2
    err = capsys.readouterr().err
    assert f"{device}: expected packer's JSON manifest, not a device" in err


def test_a_fifo_as_a_stage_file_is_refused_not_waited_on(tmp_path, capsys):
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    stage = configs / "stages" / "example.yaml"
    stage.unlink()
    os.mkfifo(stage)
    assert main(["config", "show", "--stage", "example", "--config-dir", str(configs)]) == 2
    assert "example.yaml: expected a YAML configuration file, not a FIFO" in \
        capsys.readouterr().err
