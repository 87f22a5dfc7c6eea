"""The same commands on Vast.ai: ``--provider vast`` (or ``provider: vast`` in launcher.yaml)
for offers, status, teardown and gc, against the Vast emulator and the local bucket."""

from __future__ import annotations

import json
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from runner.conftest import put
from support.keys import FAKE_VAST_KEY
from support.sshkeys import ed25519_public

from launcher.cli import main
from launcher.commands import ssh as ssh_command
from launcher.emulator.vast import VastEmulator, VastTiming
from launcher.emulator.vast import handlers as vast_handlers
from launcher.emulator.vast.records import DIRECT_PORT_START
from launcher.naming import instance_tags, launch_tag
from launcher.providers import InstanceRequest
from launcher.providers.offers import Requirement, candidates
from launcher.providers.vast import VastProvider
from launcher.secrets import Secret
from launcher.sshkeys import PublicKey
from launcher.vast import InstanceSpec, VastClient, VastHttp
from runs.conftest import bucket_env

RUN = "smoke-20261205-120000"
HOST_KEY = PublicKey.parse(ed25519_public("vast-container-host-key"))


@pytest.fixture
def vast():
    with VastEmulator(api_key=FAKE_VAST_KEY, timing=VastTiming.instant()) as emu:
        yield emu


@pytest.fixture
def vast_env(monkeypatch, tmp_path, vast, address):
    bucket_env(monkeypatch, tmp_path, address)
    for name in ("VULTR_KEY", "VULTR_API_URL", "LAUNCHER_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VAST_API_URL", vast.url)
    monkeypatch.setenv("VAST_API_KEY", FAKE_VAST_KEY)
    return vast


@pytest.fixture
def provider(vast):
    with VastProvider(VastClient(VastHttp(Secret(FAKE_VAST_KEY), base_url=vast.url))) as p:
        yield p


def launched(provider: VastProvider, run_id: str = RUN) -> str:
    offer = candidates(provider.rank_offers(Requirement(min_vram_gb=40, regions=("US",))))[0]
    tags = (*instance_tags(run_id, "smoke", 1_900_000_000), launch_tag("n0nce"))
    return provider.create_instance(InstanceRequest(
        region="US", plan=offer.plan_id, image_id="pytorch/pytorch", label=run_id, tags=tags,
        onstart="true", disk_gb=32)).id


def test_offers_on_vast_picks_a_us_machine(vast_env, capsys):
    assert main(["offers", "--provider", "vast", "--min-vram", "40", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["pick"]["region"] == "US" and out["pick"]["kind"] == "container"
    assert out["requirement"]["regions"] == ["US"]
    first = out["candidates"][0]
    assert first["plan"] == out["pick"]["plan"] and first["gpu_count"] == 1
    assert first["vram_per_gpu_gb"] >= 40


def test_status_teardown_and_gc_see_a_vast_run(vast_env, provider, capsys):
    instance_id = launched(provider)
    provider.client.create_instance(int(candidates(provider.rank_offers(
        Requirement(min_vram_gb=20, regions=("US",))))[0].plan_id),
        InstanceSpec(image="ubuntu", label="someone else's"))
    assert main(["status", "--provider", "vast", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [(r["run_id"], [i["id"] for i in r["instances"]]) for r in runs] == \
        [(RUN, [instance_id])]
    assert main(["teardown", RUN, "--provider", "vast", "--yes"]) == 0
    capsys.readouterr()
    assert provider.find_run(RUN).empty
    assert vast_env.bill(int(instance_id)).destroyed
    assert len(provider.client.list_instances()) == 1  # the foreign one is untouched
    assert main(["gc", "--provider", "vast", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["actions"] == []


def test_launcher_yaml_names_the_provider(vast_env, provider, tmp_path, capsys):
    launched(provider)
    configs = tmp_path / "configs"
    (configs / "stages").mkdir(parents=True)
    from launcher.resources import starter_configs
    (configs / "launcher.yaml").write_text(
        (starter_configs() / "launcher.yaml").read_text().replace("provider: vultr",
                                                                 "provider: vast"))
    assert main(["status", "--config-dir", str(configs), "--json"]) == 0
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)] == [RUN]


def test_without_the_vast_key_the_error_names_it(vast_env, monkeypatch, capsys):
    monkeypatch.delenv("VAST_API_KEY")
    assert main(["status", "--provider", "vast"]) == 2
    err = capsys.readouterr().err
    assert "VAST_API_KEY is not set" in err and "Traceback" not in err


def test_all_is_for_offers_only(vast_env, capsys):
    assert main(["status", "--provider", "all"]) == 2
    assert "only `launcher offers` compares the clouds" in capsys.readouterr().err


def test_offers_of_both_clouds_in_one_table(vast_env, emulator, monkeypatch, capsys):
    monkeypatch.setenv("VULTR_API_URL", emulator.url)
    assert main(["offers", "--provider", "all", "--min-vram", "40", "--json"]) == 0
    clouds = json.loads(capsys.readouterr().out)["clouds"]
    assert set(clouds) == {"vultr", "vast"}
    assert clouds["vultr"]["pick"]["region"] == "sjc" and clouds["vast"]["pick"]["region"] == "US"
    assert main(["offers", "--provider", "all", "--min-vram", "40"]) == 0
    out = capsys.readouterr().out
    assert "$/h per GPU" in out and "▶ vultr: run would pick" in out
    assert "▶ vast: run would pick" in out


def test_a_cloud_that_cannot_be_asked_is_named_and_the_other_shown(vast_env, emulator,
                                                                   monkeypatch, capsys):
    monkeypatch.setenv("VULTR_API_URL", emulator.url)
    monkeypatch.delenv("VAST_API_KEY")
    assert main(["offers", "--provider", "all", "--min-vram", "40"]) == 0
    out = capsys.readouterr().out
    assert "vast: not asked" in out and "VAST_API_KEY is not set" in out
    assert "▶ vultr: run would pick" in out


def test_doctor_on_vast_checks_the_key_its_credit_stock_and_the_bucket(vast_env, capsys):
    assert main(["doctor", "--provider", "vast", "--json"]) in (0, 1)
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["Vast key"]["status"] in ("ok", "warn")
    assert "credit" in checks["Vast key"]["detail"]
    assert checks["instance key"]["status"] == "ok"
    assert checks["GPU stock"]["status"] == "ok" and " in US at $" in checks["GPU stock"]["detail"]
    assert checks["bucket"]["status"] == "ok"


def test_doctor_on_vast_without_a_key_fails_that_check_and_skips_stock(vast_env, monkeypatch,
                                                                        capsys):
    monkeypatch.delenv("VAST_API_KEY")
    assert main(["doctor", "--provider", "vast", "--json"]) == 1
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["Vast key"]["status"] == "fail"
    assert checks["Vast key"]["detail"] == "VAST_API_KEY is not set"
    assert checks["GPU stock"]["status"] == "skip"




def ssh_print(tmp_path, capsys) -> tuple[list[str], Path]:
    """``launcher --provider vast ssh RUN --print``: the ssh argv and the pinned file."""
    assert main(["--provider", "vast", "ssh", RUN, "--print"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out.splitlines()
    known = tmp_path / "cache/launcher/known_hosts" / RUN
    assert out[0] == f"known_hosts: {known}"
    return shlex.split(out[1]), known


def address_of(vast, instance_id: str) -> str:
    return vast.state.offers[vast.state.instances[int(instance_id)].offer_id]["public_ipaddr"]


@pytest.fixture
def ssh_vast(vast_env, monkeypatch, tmp_path):
    """The Vast CLI with a cache of its own and an ``os.execv`` that fails the test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(ssh_command.os, "execv",
                        lambda path, argv: pytest.fail(f"ssh was started: {argv}"))
    return vast_env


@pytest.fixture
def publish_host_keys(s3_server, bucket, tmp_path):
    """Put a host key file where the container's runner publishes it."""
    def publish(text: str) -> None:
        put(s3_server, bucket, f"runs/{RUN}/ssh_host_keys.pub", text.encode(), tmp_path)
    return publish


def test_ssh_on_vast_pins_the_containers_keys_to_its_direct_port(
        ssh_vast, provider, publish_host_keys, tmp_path, capsys):
    instance_id = launched(provider)
    publish_host_keys(f"{HOST_KEY.line}\n")
    argv, known = ssh_print(tmp_path, capsys)
    address = address_of(ssh_vast, instance_id)
    port = str(DIRECT_PORT_START)  # the emulator's host port for the container's 22/tcp
    assert argv[argv.index("-p") + 1] == port and argv[-1] == f"root@{address}"
    assert "StrictHostKeyChecking=yes" in argv and f"UserKnownHostsFile={known}" in argv
    assert known.read_text() == f"[{address}]:{port} {HOST_KEY.line}\n"
    assert stat.S_IMODE(known.stat().st_mode) == 0o600


def test_ssh_on_vast_through_its_proxy_pins_the_proxy_name_and_port(
        ssh_vast, provider, publish_host_keys, monkeypatch, tmp_path, capsys):
    def proxied(store, inst):  # an instance without a direct port: show_instance.yaml's proxy
        view = real_view(store, inst)
        view.pop("ports", None)
        return {**view, "ssh_host": "ssh2281.vast.ai", "ssh_port": 10882}

    real_view = vast_handlers.instance_view
    monkeypatch.setattr(vast_handlers, "instance_view", proxied)
    launched(provider)
    publish_host_keys(f"{HOST_KEY.line}\n")
    argv, known = ssh_print(tmp_path, capsys)
    assert argv[-4:] == ["CheckHostIP=no", "-p", "10882", "root@ssh2281.vast.ai"]
    assert known.read_text() == f"[ssh2281.vast.ai]:10882 {HOST_KEY.line}\n"


@pytest.mark.need(shutil.which("ssh-keygen") is not None, "needs ssh-keygen")
def test_ssh_keygen_finds_the_pinned_key_for_that_port_only(
        ssh_vast, provider, publish_host_keys, tmp_path, capsys):
    address = address_of(ssh_vast, launched(provider))
    publish_host_keys(f"{HOST_KEY.line}\n")
    _, known = ssh_print(tmp_path, capsys)

    def lookup(host: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ssh-keygen", "-F", host, "-f", str(known)], check=False,
                              capture_output=True, text=True, timeout=30)

    found = lookup(f"[{address}]:{DIRECT_PORT_START}")
    assert found.returncode == 0 and HOST_KEY.blob in found.stdout, found
    assert lookup(address).returncode == 1  # port 22 of the machine is not the container


def test_ssh_on_vast_without_published_keys_refuses(ssh_vast, provider, tmp_path, capsys):
    launched(provider)
    assert main(["--provider", "vast", "ssh", RUN, "--print"]) == 1
    err = capsys.readouterr().err
    assert "SSH host keys are not in the bucket" in err and "refusing to connect" in err
    assert "Traceback" not in err
    assert not (tmp_path / "cache/launcher/known_hosts" / RUN).exists()


def test_render_on_vast_points_at_the_dry_run(vast_env, capsys):
    assert main(["render", "--provider", "vast", "--stage", "smoke"]) == 2
    err = capsys.readouterr().err
    assert "onstart script" in err and "--dry-run" in err
