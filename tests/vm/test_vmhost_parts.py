"""The VM backend's parts that need no QEMU: the recipe's digest, the QEMU command line, the
relay, the per-instance metadata endpoint, and the forwards (these run in `make test`)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from vmhost.backend import VmHypervisor, mac_for
from vmhost.image import GuestImage, apply_tweaks
from vmhost.qemu import RELAY, Forward, VmConfig, qemu_argv
from vmhost.recipe import Recipe, find_scripts

from launcher.sandbox.metadata import MetadataServer, vultr_v1


def test_the_digest_follows_every_input_of_the_recipe(tmp_path):
    base = Recipe(scripts=(("10-base.sh", b"echo one\n"),))
    assert base.digest() == Recipe(scripts=(("10-base.sh", b"echo one\n"),)).digest()
    changed = [Recipe(scripts=(("10-base.sh", b"echo two\n"),)),
               Recipe(scripts=base.scripts, packages=(*base.packages, "jq")),
               Recipe(scripts=base.scripts, requirements="numpy\n"),
               Recipe(scripts=base.scripts, suite="trixie"),
               Recipe(scripts=base.scripts, tweaks=())]
    assert len({base.digest(), *(r.digest() for r in changed)}) == 1 + len(changed)
    (tmp_path / "20-b.sh").write_text("b")
    (tmp_path / "10-a.sh").write_text("a")
    (tmp_path / "README.md").write_text("not a script")
    assert [name for name, _ in find_scripts(tmp_path)] == ["10-a.sh", "20-b.sh"]
    assert find_scripts(tmp_path / "missing") == ()


def test_tweaks_write_and_append(tmp_path):
    (tmp_path / "etc/dhcp").mkdir(parents=True)
    (tmp_path / "etc/dhcp/dhclient.conf").write_text("request subnet-mask;\n")
    apply_tweaks(tmp_path, Recipe().tweaks)
    dhclient = (tmp_path / "etc/dhcp/dhclient.conf").read_text()
    assert dhclient.startswith("request subnet-mask;\n")
    assert "rfc3442-classless-static-routes 32,169,254,169,254,0,0,0,0;" in dhclient
    cfg = tmp_path / "etc/cloud/cloud.cfg.d/90-launcher-test-datasource.cfg"
    assert cfg.read_text() == "datasource_list: [ Vultr, None ]\n"


def test_the_command_line_is_a_vultr_machine_on_a_restricted_network(tmp_path):
    cfg = VmConfig("inst-1", tmp_path / "k", tmp_path / "i", "root=LABEL=root", tmp_path / "o",
                   "52:54:00:aa:bb:cc", tmp_path / "q.sock", tmp_path / "c.log",
                   (Forward("169.254.169.254", 80, 4321), Forward("169.254.100.10", 80, 8765)))
    argv = qemu_argv(cfg, "/usr/bin/python3")
    joined = " ".join(argv)
    assert "-accel tcg" in joined and "-no-reboot" in argv
    assert "type=1,manufacturer=Vultr,product=VC2,serial=inst-1" in argv
    net = argv[argv.index("-netdev") + 1]
    assert net.startswith("user,id=net0,restrict=on,net=169.254.0.0/16,")
    assert f"guestfwd=tcp:169.254.169.254:80-cmd:/usr/bin/python3 {RELAY} 4321" in net
    assert f"guestfwd=tcp:169.254.100.10:80-cmd:/usr/bin/python3 {RELAY} 8765" in net
    assert "virtio-net-pci,netdev=net0,mac=52:54:00:aa:bb:cc" in argv
    assert mac_for("x") == mac_for("x") and mac_for("x") != mac_for("y")
    assert mac_for("x") == mac_for("x").lower()


def test_the_relay_joins_its_stdin_and_stdout_to_a_loopback_port():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        def echo() -> None:
            conn, _ = listener.accept()
            with conn:
                data = b""
                while not data.endswith(b"\n"):
                    data += conn.recv(100)
                conn.sendall(data.upper())

        thread = threading.Thread(target=echo, daemon=True)
        thread.start()
        done = subprocess.run([sys.executable, str(RELAY), str(port), "--idle", "10"],
                              input=b"hello guest\n", capture_output=True, timeout=20)
        thread.join(5)
    assert done.returncode == 0 and done.stdout == b"HELLO GUEST\n"


def test_a_pinned_metadata_server_answers_v1_json_for_its_instance():
    server = MetadataServer()
    try:
        doc = vultr_v1("i-1", region="ewr", hostname="h", mac="52:54:00:AA:00:01",
                       user_data="#cloud-config\n")
        server.register("i-1", doc)
        port = server.serve_instance("i-1")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1.json", timeout=5) as resp:
            got = json.loads(resp.read())
        assert got["instance-v2-id"] == "i-1" and got["region"] == {"regioncode": "EWR"}
        assert got["interfaces"][0]["mac"] == "52:54:00:aa:00:01"
        assert got["user-data"] == "#cloud-config\n" and got["vendor-data"] == ""
        assert len(server.served("i-1")) == 1
        server.forget("i-1")
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1.json", timeout=5)
        server.stop_instance("i-1")
    finally:
        server.stop()


def test_forwards_map_loopback_urls_to_guest_addresses(tmp_path):
    image = GuestImage(tmp_path, "d", tmp_path / "k", tmp_path / "i", tmp_path / "r", "x")
    with VmHypervisor(image, tmp_path / "vms") as hv:
        assert hv.forward("http://127.0.0.1:8765/v2", "169.254.100.10") == \
            "http://169.254.100.10/v2"
        assert hv.guest_url("http://127.0.0.1:8765/v2/instances") == \
            "http://169.254.100.10/v2/instances"
        with pytest.raises(ValueError):
            hv.forward("http://10.0.0.1:80/", "169.254.100.12")
        with pytest.raises(ValueError):
            hv.forward("http://127.0.0.1:9000/", "10.0.2.2")
        with pytest.raises(ValueError):
            hv.guest_url("http://127.0.0.1:1/")
    assert Path(tmp_path / "vms" / "blocks").is_dir()
