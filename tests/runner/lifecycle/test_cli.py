"""``python3 -m launcher.runner``: the error funnel, status, and teardown/watchdog run from a
spec file and a secrets file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.keys import FAKE_VULTR_KEY

from launcher.runner import cli, teardown
from launcher.runner.spec import HealthSpec

from .conftest import fake_secrets, make_spec


def write_run(spec, key: str = FAKE_VULTR_KEY) -> str:
    path = Path(spec.paths.secrets_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(fake_secrets(key).to_env_file())
    path.chmod(0o600)
    spec_path = path.parent / "run.json"
    spec_path.write_text(spec.to_json())
    return str(spec_path)


def test_a_bad_spec_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "run.json"
    bad.write_text(json.dumps({"run_id": "x"}))
    assert cli.main(["supervise", "--spec", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("runner: ")
    assert cli.main(["teardown", "--spec", str(tmp_path / "missing.json")]) == 2
    assert "cannot read spec" in capsys.readouterr().err


def test_a_missing_secrets_file_is_exit_2(tmp_path, capsys):
    spec = make_spec(tmp_path)
    spec_path = tmp_path / "run.json"
    spec_path.write_text(spec.to_json())
    assert cli.main(["watchdog", "--spec", str(spec_path)]) == 2
    assert "cannot read secrets" in capsys.readouterr().err


def test_status_prints_the_status_file(tmp_path, capsys):
    spec = make_spec(tmp_path)
    spec_path = write_run(spec)
    assert cli.main(["status", "--spec", spec_path]) == 2  # none yet
    capsys.readouterr()
    state = Path(spec.paths.state_dir)
    state.mkdir(parents=True)
    (state / "status.json").write_text(json.dumps({"run_id": spec.run_id, "state": "running"}))
    assert cli.main(["status", "--spec", spec_path]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "running"


def test_the_watchdog_before_the_deadline_does_nothing(tmp_path, capsys):
    spec_path = write_run(make_spec(tmp_path))
    assert cli.main(["watchdog", "--spec", spec_path]) == 0
    assert "watchdog:" in capsys.readouterr().err


def test_teardown_from_the_command_line(world, monkeypatch, capsys):
    uploads = []
    monkeypatch.setattr(teardown, "default_final_upload", lambda ctx: uploads.append(1))
    spec_path = write_run(world.spec)
    assert cli.main(["teardown", "--spec", spec_path, "--keep-volume"]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"left behind: volume {world.block_id} kept")  # not verified
    assert world.block_exists() and not world.instance_exists() and uploads == [1]


def test_the_status_is_resumed_not_overwritten(world, monkeypatch):
    monkeypatch.setattr(teardown, "default_final_upload", lambda ctx: None)
    world.ctx.reporter.note("from the supervisor")
    spec_path = write_run(world.spec)
    cli.main(["teardown", "--spec", spec_path])
    notes = json.loads((Path(world.spec.paths.state_dir) / "status.json").read_text())["notes"]
    assert notes[0] == "from the supervisor"


def test_a_test_host_root_is_refused_on_a_run_that_checks_gpus(tmp_path, monkeypatch, capsys):
    from launcher.runner.supervisor import TEST_HOST_ENV

    spec_path = write_run(make_spec(tmp_path))  # health.cpu_only is false: a real GPU run
    monkeypatch.setenv(TEST_HOST_ENV, str(tmp_path))
    assert cli.main(["supervise", "--spec", spec_path]) == 2
    err = capsys.readouterr().err
    assert f"{TEST_HOST_ENV} is set but health.cpu_only is not: refusing" in err
    assert not (tmp_path / "state" / "supervisor.pid").exists()  # nothing ran


@pytest.mark.parametrize("root", ["relative/dir", "/no/such/dir"])
def test_a_test_host_root_must_be_an_existing_absolute_dir(tmp_path, monkeypatch, capsys, root):
    from launcher.runner.supervisor import TEST_HOST_ENV

    spec_path = write_run(make_spec(tmp_path, health=HealthSpec(cpu_only=True)))
    monkeypatch.setenv(TEST_HOST_ENV, root)
    assert cli.main(["supervise", "--spec", spec_path]) == 2
    assert "is not an absolute path to a directory" in capsys.readouterr().err
    assert not (tmp_path / "state" / "supervisor.pid").exists()


@pytest.mark.parametrize("command", ["supervise", "watchdog", "teardown", "status"])
def test_the_module_runs(command):
    done = subprocess.run([sys.executable, "-m", "launcher.runner", command, "--help"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0 and "--spec" in done.stdout


def test_these_modules_use_the_standard_library_only():
    import ast

    root = Path(__file__).resolve().parents[3] / "launcher" / "runner"
    allowed = set(sys.stdlib_module_names)
    for name in ("vultr", "statefiles", "teardown", "watchdog", "supervisor", "hardening",
                 "cli", "__main__"):
        for node in ast.walk(ast.parse((root / f"{name}.py").read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                assert (module.split(".")[0] in allowed
                        or module.startswith("launcher.runner")), (name, module)
