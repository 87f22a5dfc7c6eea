"""The provider contract's promises, held against Vultr (the emulator)."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from conftest import client_for

from launcher.emulator import ManualClock, Timing
from launcher.errors import TransientError
from launcher.naming import instance_tags, reusable_volume_label, volume_label
from launcher.providers import InstanceRequest, VolumeRequest
from launcher.providers.vultr import VultrProvider, run_of_volume
from launcher.vultr import BlockSpec, PollPolicy

SNAPSHOT_ID = "5f0d2c1e-8a3b-4c6d-9e7f-0a1b2c3d4e5f"
PLAN = "vcg-a100-12c-120g-80vram"
RUN = "diffusion-20261129-100000"


def request(run_id: str = RUN, region: str = "sea") -> InstanceRequest:
    return InstanceRequest(region, PLAN, SNAPSHOT_ID, run_id,
                           instance_tags(run_id, "diffusion", 2_000_000_000),
                           user_data=b"#cloud-config\n{}\n")


def on_manual_clock(client, clock: ManualClock) -> VultrProvider:
    """Polls every simulated second or two; sleeping moves the emulator's clock."""
    client.poll = PollPolicy(initial=0.5, factor=2.0, max_interval=2.0)
    return VultrProvider(client)


@pytest.fixture
def provider(client) -> VultrProvider:
    return VultrProvider(client)


def launch(provider: VultrProvider, run_id: str = RUN):
    volume = provider.create_volume(VolumeRequest("sea", 1024, volume_label(run_id)))
    instance = provider.create_instance(request(run_id))
    return volume, instance


def test_a_run_is_found_from_the_cloud_alone(provider, client):
    volume, instance = launch(provider)
    launch(provider, "operator-20261129-100000")
    client.create_block(BlockSpec("sea", 100, reusable_volume_label("diffusion")))
    found = provider.find_run(RUN)
    assert [i.id for i in found.instances] == [instance.id]
    assert [v.id for v in found.volumes] == [volume.id]
    runs = {r.run_id: r for r in provider.list_runs()}
    assert set(runs) == {RUN, "operator-20261129-100000"}  # the reusable volume is no run's
    assert provider.find_run("nobody").empty


def test_creates_return_before_ready_and_waits_have_deadlines(make_emulator):
    clock = ManualClock()
    emu = make_emulator(timing=Timing.realistic(), clock=clock)
    with client_for(emu.url, sleep=clock.advance) as client:
        provider = on_manual_clock(client, clock)
        volume, instance = launch(provider)
        assert not volume.ready and not instance.ready
        assert provider.wait_volume_ready(volume.id, deadline_s=60).ready
        assert provider.wait_instance_ready(instance.id, deadline_s=60).ready


def test_attach_retries_a_locked_instance_and_never_reboots(make_emulator):
    clock = ManualClock()
    emu = make_emulator(timing=Timing.realistic(), clock=clock)
    with client_for(emu.url, sleep=clock.advance) as client:
        provider = on_manual_clock(client, clock)
        volume, instance = launch(provider)
        attached = provider.attach_volume(volume.id, instance.id, deadline_s=120)
    assert attached.attached_to == instance.id
    attaches = [e for e in emu.events if e.route == "/blocks/{id}/attach"]
    assert [e.status for e in attaches][-1] == 204 and 400 in [e.status for e in attaches]
    assert not any(e.note for e in emu.events if e.note and "reboot" in e.note)


def test_deleting_an_attached_volume_detaches_it_first_and_gone_is_success(provider):
    volume, instance = launch(provider)
    provider.attach_volume(volume.id, instance.id, deadline_s=30)
    assert provider.delete_volume(volume.id) is True
    assert provider.delete_volume(volume.id) is False
    assert provider.delete_instance(instance.id) is True
    assert provider.delete_instance(instance.id) is False
    assert provider.find_run(RUN).empty


def test_an_ambiguous_create_buys_no_duplicate(emulator, provider):
    emulator.inject("POST /instances", "ambiguous_create")
    emulator.inject("POST /blocks", "ambiguous_create")
    launch(provider)
    found = provider.find_run(RUN)
    assert len(found.instances) == 1 and len(found.volumes) == 1


def test_a_failed_read_raises_instead_of_reporting_nothing(emulator, provider):
    launch(provider)
    emulator.inject("GET /instances", "503", count=50)
    with pytest.raises(TransientError):
        provider.list_runs()
    with pytest.raises(TransientError):
        provider.find_run(RUN)


@pytest.mark.parametrize(("label", "run_id"), [
    ("diffusion-1-cache", "diffusion-1"), ("launcher-cache-diffusion", ""),
    ("my-data", ""), ("launcher-cache-x-cache", "")])
def test_which_volumes_belong_to_a_run(label, run_id):
    assert run_of_volume(label) == run_id


@contextmanager
def timed(make_emulator, **timing):
    """(emulator, client, provider, clock) on a manual clock with these ``Timing`` fields."""
    clock = ManualClock()
    emu = make_emulator(timing=Timing(**timing), clock=clock)
    with client_for(emu.url, sleep=clock.advance) as client:
        yield emu, client, on_manual_clock(client, clock), clock


def test_an_attach_is_read_back_until_it_shows(make_emulator):
    # Attaching is asynchronous on Vultr: accepted first, shown on the volume later.
    with timed(make_emulator, attach_visible_s=4.0) as (_, _, provider, clock):
        volume, instance = launch(provider)
        attached = provider.attach_volume(volume.id, instance.id, deadline_s=60)
        assert attached.attached_to == instance.id and clock() >= 4.0


def test_a_volume_gone_while_its_attach_settles_was_the_run_s(make_emulator):
    # A run can end within seconds: its runner detaches and deletes the volume itself.
    with timed(make_emulator, attach_visible_s=4.0) as (emu, client, provider, _):
        volume, instance = launch(provider)
        real_attach = client.attach_block

        def attach_then_the_run_ends(block_id, instance_id, live=True):
            real_attach(block_id, instance_id, live=live)
            emu.state.detach_block(block_id, live=True)
            emu.state.delete_block(block_id)

        client.attach_block = attach_then_the_run_ends
        attached = provider.attach_volume(volume.id, instance.id, deadline_s=60)
        assert attached.id == volume.id and attached.attached_to == instance.id


def test_a_volume_s_mount_id_is_read_back_until_it_is_set(make_emulator):
    with timed(make_emulator, block_mount_id_s=3.0) as (_, client, provider, _):
        assert client.create_block(BlockSpec("sea", 100, "peek")).mount_id == ""
        volume = provider.create_volume(VolumeRequest("sea", 100, volume_label(RUN)))
        assert volume.mount_id.startswith("sea-")
