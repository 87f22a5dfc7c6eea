"""The same commands on Vast.ai: ``--provider vast`` (or ``provider: vast`` in launcher.yaml)
for offers, status, teardown and gc, against the Vast emulator and the local bucket."""

from __future__ import annotations

import json

import pytest
from support.keys import FAKE_VAST_KEY

from launcher.cli import main
from launcher.emulator.vast import VastEmulator, VastTiming
from launcher.naming import instance_tags, launch_tag
from launcher.providers import InstanceRequest
from launcher.providers.offers import Requirement, candidates
from launcher.providers.vast import VastProvider
from launcher.secrets import Secret
from launcher.vast import InstanceSpec, VastClient, VastHttp
from runs.conftest import bucket_env

RUN = "smoke-20261205-120000"


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


def test_ssh_on_vast_refuses_rather_than_trust_an_unpinned_host(vast_env, provider, capsys):
    launched(provider)
    assert main(["--provider", "vast", "ssh", RUN, "--print"]) != 0
    err = capsys.readouterr().err
    assert "publish no SSH host key" in err and "Traceback" not in err


def test_render_on_vast_points_at_the_dry_run(vast_env, capsys):
    assert main(["render", "--provider", "vast", "--stage", "smoke"]) == 2
    err = capsys.readouterr().err
    assert "onstart script" in err and "--dry-run" in err
