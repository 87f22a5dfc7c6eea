"""Vast.ai behind the provider contract, against the Vast emulator: offers judged and ordered,
runs found from the label alone, deleting is destroying, and what Vast does not have is said.
"""

from __future__ import annotations

import pytest
from support.keys import EMULATOR_TEST_KEY

from launcher.emulator.vast import ManualClock, VastEmulator, VastTiming
from launcher.errors import ConfigError, NotFoundError
from launcher.naming import instance_tags, launch_tag, parse_tags
from launcher.providers import InstanceRequest, VolumeRequest
from launcher.providers.offers import Requirement, candidates
from launcher.providers.vast import VastProvider, countries, tags_of, vast_label
from launcher.secrets import Secret
from launcher.vast import InstanceSpec, VastClient, VastHttp
from launcher.vultr.waits import PollPolicy

RUN = "smoke-20261205-120000"


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def vast(clock):
    with VastEmulator(api_key=EMULATOR_TEST_KEY, clock=clock,
                      timing=VastTiming.realistic()) as emu:
        yield emu


@pytest.fixture
def provider(vast, clock):
    http = VastHttp(Secret(EMULATOR_TEST_KEY), base_url=vast.url, sleep=clock.advance,
                    clock=clock)
    with VastProvider(VastClient(http, poll=PollPolicy(initial=1.0, max_interval=2.0))) as p:
        yield p


def launch(provider: VastProvider, offer: str, run_id: str = RUN) -> str:
    tags = (*instance_tags(run_id, "smoke", 1_900_000_000), launch_tag("n0nce"))
    request = InstanceRequest(region="US", plan=offer, image_id="pytorch/pytorch:2.9.0",
                              label=run_id, tags=tags, onstart="echo hi",
                              env=(("B2_KEY_ID", "k"),), disk_gb=32)
    return provider.create_instance(request).id


def test_offers_fit_the_requirement_in_priority_order(provider):
    table = provider.rank_offers(Requirement(min_vram_gb=40, regions=("sjc", "sea", "lax")))
    assert table.requirement.regions == ("US",)  # Vultr's ids read as their country
    fitting = candidates(table)
    assert fitting, "the catalogue has 1-GPU offers of 40 GB or more in the US"
    assert all(o.region == "US" and o.gpu_count == 1 and o.vram_per_gpu_gb >= 40
               for o in fitting)
    prices = [o.price_per_hour for o in fitting]
    assert prices == sorted(prices)
    codes = {r.code for v in table.excluded() for r in v.reasons}
    assert "too_many_gpus" in codes  # multi-GPU machines are listed, never picked


def test_a_price_ceiling_and_a_reliability_floor_exclude_with_reasons(provider):
    table = provider.rank_offers(Requirement(min_vram_gb=40, max_price_per_hour=1.0,
                                             min_reliability=0.999, regions=("US",)))
    assert all(o.price_per_hour <= 1.0 for o in candidates(table))
    reasons = {r.code for v in table.excluded() for r in v.reasons}
    assert {"over_price", "unreliable"} <= reasons


def test_an_unknown_region_is_refused_by_name():
    with pytest.raises(ConfigError, match="region 'moon'"):
        countries(("sjc", "moon"))
    assert countries(("sjc", "US", "yto", "DE")) == ("US", "CA", "DE")


def test_a_run_is_found_from_its_label_alone(provider, vast):
    offer = candidates(provider.rank_offers(Requirement(min_vram_gb=40, regions=("US",))))[0]
    instance_id = launch(provider, offer.plan_id)
    # Someone else's instance on the same account is never the launcher's.
    provider.client.create_instance(int(candidates(provider.rank_offers(
        Requirement(min_vram_gb=20, regions=("US",))))[0].plan_id),
        InstanceSpec(image="ubuntu", label="my notebook"))
    found = provider.find_run(RUN)
    assert [i.id for i in found.instances] == [instance_id]
    tags = parse_tags(found.instances[0].tags)
    assert (tags.run_id, tags.stage, tags.expires_epoch) == (RUN, "smoke", 1_900_000_000)
    assert found.instances[0].usd_per_hour == pytest.approx(offer.price_per_hour, rel=0.05)
    assert [r.run_id for r in provider.list_runs()] == [RUN]


def test_deleting_destroys_and_a_second_delete_finds_nothing(provider, vast, clock):
    offer = candidates(provider.rank_offers(Requirement(min_vram_gb=40, regions=("US",))))[0]
    instance_id = launch(provider, offer.plan_id)
    ready = provider.wait_instance_ready(instance_id, deadline_s=60)
    assert ready.running and ready.state == "running"
    assert provider.delete_instance(instance_id) is True
    assert provider.delete_instance(instance_id) is False
    assert provider.find_run(RUN).empty
    assert vast.bill(int(instance_id)).destroyed  # destroyed, never merely stopped


def test_what_vast_does_not_have_is_said_not_imitated(provider):
    assert not provider.capabilities.volumes and not provider.capabilities.tags
    assert provider.find_volumes() == () and provider.find_volumes("x-cache") == ()
    with pytest.raises(ConfigError, match="no block volumes"):
        provider.create_volume(VolumeRequest("US", 100, "x-cache"))
    with pytest.raises(NotFoundError):
        provider.get_volume("1")
    with pytest.raises(ConfigError, match="Docker images"):
        provider.get_image("snap-1")
    assert provider.list_images() == ()


def test_labels_carry_the_tags_and_foreign_labels_carry_none():
    tags = instance_tags(RUN, "smoke", 1_900_000_000)
    assert tags_of(vast_label(RUN, tags)) == tags
    assert tags_of("launcher") == () and tags_of("my launcher box") == ()
    assert tags_of(None) == ()


def test_a_stage_s_vast_settings_shape_the_requirement(provider, tmp_path):
    from launcher.config import load_stage
    from launcher.resources import starter_configs

    configs = tmp_path / "configs"
    import shutil
    shutil.copytree(starter_configs(), configs)
    text = (configs / "launcher.yaml").read_text()
    (configs / "launcher.yaml").write_text(text.replace("  # regions: [US, CA]",
                                                        "  regions: [DE, US]"))
    stage = load_stage(configs, "smoke")
    need = Requirement.from_config(stage)
    assert (need.countries, need.min_reliability, need.min_disk_gb) == (("DE", "US"), 0.95, 128)
    table = provider.rank_offers(need)
    assert table.requirement.regions == ("DE", "US")
    assert {v.offer.region for v in table.verdicts} <= {"DE", "US"}


def test_the_hand_delete_is_a_destroy_with_the_key_as_a_variable(provider, vast):
    assert provider.delete_commands("instance", "42") == (
        f'curl -X DELETE -H "Authorization: Bearer $VAST_API_KEY" {vast.url}/instances/42/',)
    assert provider.delete_commands("volume", "7") == ()
    assert provider.title == "Vast.ai"
