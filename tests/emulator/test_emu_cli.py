"""``python -m launcher.emulator`` end to end: one URL line, a scripted session, clean exit."""

from __future__ import annotations

import os
import queue
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
from support.keys import EMULATOR_CLI_KEY as KEY

from launcher.emulator.cli import main
from launcher.errors import OutOfCapacityError
from launcher.secrets import Secret
from launcher.vultr import BlockSpec, InstanceSpec, VultrClient, VultrHttp

from .emuclient import A100_40, SNAPSHOT_ID, Api

ROOT = Path(__file__).resolve().parents[2]

DEADLINE_S = 15.0


def _spawn(*args: str, env_key: str | None = KEY,
           entry: tuple[str, ...] = ("launcher.emulator",)) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VULTR_")}
    if env_key is not None:
        env["VULTR_KEY"] = env_key
    return subprocess.Popen([sys.executable, "-m", *entry, *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _first_line(proc: subprocess.Popen) -> str:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=DEADLINE_S)
    except queue.Empty:
        proc.kill()
        raise AssertionError("the emulator printed no URL line in time") from None


def _finish(proc: subprocess.Popen, signum: int) -> tuple[str, str]:
    proc.send_signal(signum)
    try:
        out, err = proc.communicate(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, err
    return out, err


def _scripted_session(api: Api) -> None:
    assert api.get("/plans", type="vcg").status_code == 200
    assert A100_40 in api.get("/regions/sea/availability", type="vcg").json()["available_plans"]
    inst = api.create_instance(snapshot_id=SNAPSHOT_ID)
    block = api.create_block()
    assert api.post(f"/blocks/{block['id']}/attach",
                    {"instance_id": inst["id"], "live": True}).status_code == 204
    assert api.delete(f"/instances/{inst['id']}").status_code == 204
    assert api.delete(f"/blocks/{block['id']}").status_code == 204


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serves_a_session_and_exits_cleanly(signum):
    proc = _spawn("--port", "0", "--timing", "instant")
    line = _first_line(proc)
    assert line.startswith("VULTR_API_URL=http://127.0.0.1:") and line.endswith("/v2\n")
    _scripted_session(Api(line.strip().split("=", 1)[1], key=KEY))
    out, err = _finish(proc, signum)
    assert out == "" and KEY not in err and KEY not in line


def test_the_launcher_subcommand_serves_the_api_layer_a_session():
    proc = _spawn("--port", "0", "--timing", "instant", entry=("launcher", "emulator"))
    url = _first_line(proc).strip().split("=", 1)[1]
    with VultrClient(VultrHttp(Secret(KEY), base_url=url)) as client:
        assert any(p.gpu_vram_gb == 40 for p in client.list_plans("vcg"))
        assert A100_40 in client.region_availability("sea").available_plans
        block = client.create_block(BlockSpec("sea", 1000, "cli-session"))
        instance = client.create_instance(InstanceSpec(
            "sea", A100_40, "cli-session", snapshot_id=SNAPSHOT_ID))
        client.attach_block(block.id, instance.id, live=True)
        assert client.get_block(block.id).attached_to == instance.id
        assert client.delete_instance(instance.id) and client.delete_block(block.id)
        assert client.list_instances(label="cli-session") == ()
    out, err = _finish(proc, signal.SIGTERM)
    assert out == "" and KEY not in err


def test_a_generated_key_goes_to_the_file_only(tmp_path):
    key_file = tmp_path / "key"
    proc = _spawn("--api-key-file", str(key_file), "--no-rate-limit", env_key=None)
    line = _first_line(proc)
    key = key_file.read_text().strip()
    assert len(key) >= 32 and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    api = Api(line.strip().split("=", 1)[1], key=key)
    assert api.get("/account").status_code == 200
    out, err = _finish(proc, signal.SIGTERM)
    assert key not in line + out + err


def test_no_key_and_no_file_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.delenv("VULTR_KEY", raising=False)
    assert main(["--port", "0"]) == 2
    assert "VULTR_KEY" in capsys.readouterr().err


def test_run_in_process_stops_on_its_event(monkeypatch, capsys):
    from launcher.emulator import cli

    monkeypatch.setenv("EMU_CLI_KEY", KEY)
    args = cli.build_parser().parse_args(["--key-env", "EMU_CLI_KEY", "--timing", "instant"])
    stop = threading.Event()
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(cli.run(args, stop)), daemon=True)
    worker.start()
    pause, printed = threading.Event(), ""
    for _ in range(100):  # bounded: 100 × 0.05 s
        printed += capsys.readouterr().out
        if "VULTR_API_URL=" in printed:
            break
        pause.wait(0.05)
    stop.set()
    worker.join(DEADLINE_S)
    assert result == [0]
    assert printed.startswith("VULTR_API_URL=http://127.0.0.1:") and KEY not in printed


def test_faults_and_stock_are_set_from_a_shell_through_the_control_endpoint():
    proc = _spawn("--port", "0", "--timing", "instant", entry=("launcher", "emulator"))
    url = _first_line(proc).strip().split("=", 1)[1]
    control = url.removesuffix("/v2") + "/_emulator"
    key = {"Authorization": f"Bearer {KEY}"}
    fault = {"route": "POST /instances", "kind": "refuse", "count": 1, "error": "out_of_stock"}
    assert requests.post(control + "/faults", json=fault, headers=key, timeout=5).status_code \
        == 201
    stock = {"region": "sea", "plans": [A100_40]}
    assert requests.post(control + "/stock", json=stock, headers=key, timeout=5).json() == {
        "region": "sea", "available_plans": [A100_40]}
    with VultrClient(VultrHttp(Secret(KEY), base_url=url)) as client:
        assert client.region_availability("sea").available_plans == (A100_40,)
        spec = InstanceSpec("sea", A100_40, "shell-rehearsal", snapshot_id=SNAPSHOT_ID)
        with pytest.raises(OutOfCapacityError):
            client.create_instance(spec)
        assert client.delete_instance(client.create_instance(spec).id)
    out, err = _finish(proc, signal.SIGTERM)
    assert out == "" and KEY not in err
