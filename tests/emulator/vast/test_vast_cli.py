"""``python -m launcher.emulator.vast`` and ``launcher emulator --provider vast``."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import threading
from contextlib import redirect_stdout
from pathlib import Path

from support.keys import EMULATOR_CLI_KEY

from launcher.commands import emulator as command
from tests.emulator.vast.conftest import call

ROOT = Path(__file__).resolve().parents[3]


def test_the_module_prints_one_line_and_never_the_key():
    env = {**os.environ, "VAST_API_KEY": EMULATOR_CLI_KEY, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "launcher.emulator.vast", "--timing",
                             "instant"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, text=True, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        assert line.startswith("VAST_API_URL=http://127.0.0.1:") and line.endswith("/api/v0\n")
        url = line.strip().split("=", 1)[1]
        assert call(f"{url}/users/current/", key=EMULATOR_CLI_KEY)[0] == 200
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and out == "" and err == ""
    assert EMULATOR_CLI_KEY not in line + out + err


def test_launcher_emulator_takes_provider_vast(monkeypatch):
    monkeypatch.setenv("VAST_API_KEY", EMULATOR_CLI_KEY)
    monkeypatch.delenv("VULTR_KEY", raising=False)
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    args = parser.parse_args(["emulator", "--provider", "vast", "--timing", "instant"])
    stop, out = threading.Event(), io.StringIO()
    result: list[int] = []
    with redirect_stdout(out):
        worker = threading.Thread(target=lambda: result.append(args.handler(args, stop)))
        worker.start()
        for _ in range(100):
            if out.getvalue():
                break
            stop.wait(0.05)
        stop.set()
        worker.join(10)
    assert result == [0]
    assert out.getvalue().startswith("VAST_API_URL=http://127.0.0.1:")
    assert out.getvalue().count("\n") == 1 and EMULATOR_CLI_KEY not in out.getvalue()


def test_launcher_emulator_still_defaults_to_vultr(monkeypatch, capsys):
    monkeypatch.delenv("VULTR_KEY", raising=False)
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    args = parser.parse_args(["emulator"])
    assert args.provider == "vultr"
    assert args.handler(args, threading.Event()) == 2
    assert "set VULTR_KEY" in capsys.readouterr().err
    args = parser.parse_args(["emulator", "--provider", "vast"])
    monkeypatch.delenv("VAST_API_KEY", raising=False)
    assert args.handler(args, threading.Event()) == 2
    assert "set VAST_API_KEY" in capsys.readouterr().err
