"""The e2e bed's parts that need no VM: the guest agent client against a scripted agent, the
agent's port on the QEMU command line, the revocable key proxy, and the timing rows."""

from __future__ import annotations

import base64
import json
import socket
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from vmhost.agent import AgentError, guest_exec
from vmhost.qemu import VmConfig, qemu_argv

from .keyproxy import KeyProxy
from .timings import epoch, table


def _fake_agent(path: Path, exit_code: int = 0) -> threading.Thread:
    """A guest agent that answers one session: a stale line, then sync, exec and status."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        with conn, conn.makefile("rwb") as io:
            io.write(b'{"return": "stale"}\n')
            for line in io:
                request = json.loads(line)
                name, args = request["execute"], request.get("arguments", {})
                answer = {"guest-sync": args.get("id"), "guest-exec": {"pid": 42},
                          "guest-exec-status": {"exited": True, "exitcode": exit_code,
                                                "out-data": base64.b64encode(
                                                    b"killed\n").decode()}}[name]
                io.write(json.dumps({"return": answer}).encode() + b"\n")
                io.flush()
        server.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_guest_exec_syncs_runs_and_returns_the_commands_result(tmp_path):
    path = tmp_path / "qga.sock"
    thread = _fake_agent(path, exit_code=0)
    result = guest_exec(path, ["/usr/bin/pkill", "-KILL", "-f", "x"], timeout=10)
    assert (result.exit_code, result.stdout) == (0, "killed\n")
    thread.join(5)


def test_guest_exec_gives_up_at_its_deadline_without_an_agent(tmp_path):
    with pytest.raises(AgentError, match="cannot reach the guest agent"):
        guest_exec(tmp_path / "absent.sock", ["/bin/true"], timeout=1.5)


def test_the_agent_port_is_on_the_command_line_only_when_asked(tmp_path):
    cfg = VmConfig("i-1", Path("k"), Path("i"), "c", Path("o"), "52:54:00:00:00:01",
                   tmp_path / "q", tmp_path / "console", ())
    assert not any("virtserialport" in a for a in qemu_argv(cfg))
    with_agent = qemu_argv(VmConfig(*[getattr(cfg, f) for f in (
        "instance_id", "kernel", "initrd", "cmdline", "overlay", "mac", "qmp_socket",
        "console", "forwards")], agent_socket=tmp_path / "qga"))
    joined = " ".join(with_agent)
    assert f"path={tmp_path / 'qga'},server=on,wait=off" in joined
    assert "name=org.qemu.guest_agent.0" in joined


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


def test_the_key_proxy_relays_until_revoked_then_refuses_like_a_deleted_key():
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    proxy = KeyProxy(f"http://127.0.0.1:{upstream.server_address[1]}")
    try:
        assert urllib.request.urlopen(proxy.url + "/b/k", timeout=5).read() == b"ok"
        proxy.revoke()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(proxy.url + "/b/k", timeout=5)
        assert refused.value.code == 403
        assert b"InvalidAccessKeyId" in refused.value.read()
        assert proxy.denied == 1
    finally:
        proxy.close()
        upstream.shutdown()
        upstream.server_close()


def test_timing_rows_read_utc_stamps_and_print_a_column_per_run():
    assert epoch("1970-01-01T00:01:00Z") == 60.0 and epoch("") is None
    row = {"run_id": "e2e-happy", "launch_s": 3.2, "boot_to_metadata_s": 20.0,
           "boot_to_runner_s": 90.0, "phases_s": {"train": 12.0}, "idle_billing_s": 8.0,
           "volume_delete_after_launch_s": None, "instance_delete_after_launch_s": 200.0,
           "training_exit": "train phase end"}
    lines = table([row])
    assert "e2e-happy" in lines[0]
    assert any(line.startswith("idle billing") and line.rstrip().endswith("8") for line in lines)
    assert any(line.startswith("  phase train") and "12" in line for line in lines)
