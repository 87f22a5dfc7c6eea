"""Failover on capacity, rollback on every failure and every Ctrl-C, and what is left when
the rollback itself fails."""

from __future__ import annotations

import os
import signal

import pytest
from conftest import client_for

import launcher.provision.reconcile as reconcile_module
from launcher.emulator import Timing
from launcher.errors import ApiError, TransientError
from launcher.providers.vultr import VultrProvider
from launcher.provision import (
    CapacityExhaustedError,
    LaunchResult,
    RollbackIncompleteError,
    run_stage,
)
from launcher.vultr import PollPolicy

REGIONS = ("sjc", "sea", "lax")


def nothing_left(bed, deps) -> None:
    assert bed.left() == ([], [])
    assert deps.provider.list_runs() == []


def sold_out(bed, *regions: str):
    """A confirm hook that empties ``regions``' stock after planning: the plan's first
    candidates are then refused at create time, as when stock moves under a launch."""

    def confirm(plan) -> bool:
        for region in regions:
            bed.emulator.set_stock(region, [])
        return True

    return confirm


# -- failover -------------------------------------------------------------------------------

def test_a_capacity_refusal_moves_on_and_leaving_a_region_deletes_its_volume(bed):
    deps = bed.deps(confirm=sold_out(bed, "sjc"))
    result = run_stage(bed.request(), deps)
    assert isinstance(result, LaunchResult)
    assert result.instance.region == "sea" and result.volume.region == "sea"
    assert [(s.offer.region, s.offer.plan_id) for s in result.tried] == [
        ("sjc", "vcg-l40s-16c-180g-48vram"), ("sjc", "vcg-a40-24c-120g-48vram")]
    text = deps.progress.text
    assert "trying next: vcg-a40-24c-120g-48vram in sjc" in text
    assert "trying next: vcg-a100-12c-120g-80vram in sea" in text
    assert "leaving sjc: deleting volume" in text
    blocks = bed.emulator.state.blocks.values()
    assert [b.region for b in blocks] == ["sea"]  # the sjc volume is gone, one left
    creates = [e for e in bed.emulator.mutations() if e.method == "POST" and e.route == "/blocks"]
    assert len(creates) == 2  # one in sjc (deleted), one in sea; not one per candidate


def test_when_every_candidate_is_refused_the_table_says_why_and_nothing_is_left(bed):
    deps = bed.deps(confirm=sold_out(bed, *REGIONS))
    with pytest.raises(CapacityExhaustedError) as failed:
        run_stage(bed.request(), deps)
    message = str(failed.value)
    assert "all 5 candidate offers were refused" in message
    assert "why skipped" in message and message.count("not available") == 5
    for region in REGIONS:
        assert region in message
    assert len(failed.value.tried) == 5
    nothing_left(bed, deps)
    assert "stays in the bucket" in deps.progress.text  # the code bundle, said out loud
    assert failed.value.exit_code == 1


# -- failure and Ctrl-C at every step -------------------------------------------------------

class Faulty:
    """The real provider, except that ``method`` raises ``error`` (after doing the call when
    ``after`` is set: the create happened, the caller never heard)."""

    def __init__(self, real, method: str, error: BaseException, after: bool = False):
        self.real, self.method, self.error, self.after = real, method, error, after
        self.name = real.name

    def __getattr__(self, name):
        attribute = getattr(self.real, name)
        if name != self.method:
            return attribute

        def call(*args, **kwargs):
            if self.after:
                attribute(*args, **kwargs)
            raise self.error

        return call


class FaultyBucket:
    def __init__(self, real, error: BaseException):
        self.real, self.error, self.address = real, error, real.address

    def put_file(self, local, url):
        raise self.error

    def stat(self, url):
        return self.real.stat(url)

    def read_json(self, url):
        return self.real.read_json(url)


STEPS = [("create_volume", False), ("create_volume", True), ("wait_volume_ready", False),
         ("render", False), ("create_instance", False), ("create_instance", True),
         ("wait_instance_ready", False), ("attach_volume", False), ("upload", False)]


def arm(bed, monkeypatch, step: str, after: bool, error: BaseException):
    deps = bed.deps()
    if step == "upload":
        real_factory = deps.bucket_for
        deps.bucket_for = lambda storage: FaultyBucket(real_factory(storage), error)
    elif step == "render":
        def broken(*args, **kwargs):
            raise error

        monkeypatch.setattr(reconcile_module, "render", broken)
    else:
        if step == "wait_instance_ready":  # instant timing answers ready at create
            monkeypatch.setattr(reconcile_module, "wait_instance",
                                lambda session, i: session.provider.wait_instance_ready(i.id, 1))
        if step == "wait_volume_ready":  # likewise
            monkeypatch.setattr(reconcile_module, "volume_ready",
                                lambda session, v: session.provider.wait_volume_ready(v.id, 1))
        deps.provider = Faulty(deps.provider, step, error, after)
    return deps


@pytest.mark.parametrize(("step", "after"), STEPS)
def test_a_failure_at_any_step_leaves_nothing(quick_bed, monkeypatch, step, after):
    boom = TransientError("boom", method="POST", path="/x")
    deps = arm(quick_bed, monkeypatch, step, after, boom)
    with pytest.raises(TransientError, match="boom"):
        run_stage(quick_bed.request(), deps)
    nothing_left(quick_bed, deps)


@pytest.mark.parametrize(("step", "after"), STEPS)
def test_ctrl_c_at_any_step_leaves_nothing(quick_bed, monkeypatch, step, after):
    deps = arm(quick_bed, monkeypatch, step, after, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        run_stage(quick_bed.request(), deps)
    nothing_left(quick_bed, deps)


@pytest.mark.parametrize("route", ["POST /blocks", "GET /blocks/{id}", "POST /instances",
                                   "POST /blocks/{id}/attach"])
def test_server_errors_beyond_the_retries_leave_nothing(quick_bed, route):
    quick_bed.emulator.inject(route, "503", count=5)  # the client tries 5 times
    deps = quick_bed.deps()
    with pytest.raises(ApiError):
        run_stage(quick_bed.request(), deps)
    nothing_left(quick_bed, deps)


# -- the rollback itself --------------------------------------------------------------------

def test_a_rollback_that_cannot_delete_says_what_remains_and_how_to_delete_it(bed,
                                                                               monkeypatch):
    deps = arm(bed, monkeypatch, "attach_volume", False,
               TransientError("attach failed", method="POST", path="/blocks/x/attach"))
    real = deps.provider.real

    def refuse(volume_id, *args, **kwargs):
        raise TransientError("Internal error", method="DELETE", path=f"/blocks/{volume_id}",
                             status=500)

    monkeypatch.setattr(real, "delete_volume", refuse)
    with pytest.raises(RollbackIncompleteError) as failed:
        run_stage(bed.request(), deps)
    message = str(failed.value)
    instances, blocks = bed.left()
    assert instances == [] and len(blocks) == 1  # the instance went; the volume would not
    assert "attach failed" in message and "may still bill" in message
    assert (f'curl -X DELETE -H "Authorization: Bearer $VULTR_KEY" '
            f"{bed.emulator.url}/blocks/{blocks[0]}") in message
    assert "launcher teardown smoke-" in message
    assert failed.value.exit_code == 5
    assert "retrying in" in deps.progress.text  # each deletion retried before giving up


def test_a_second_ctrl_c_during_the_rollback_does_not_stop_it(quick_bed, monkeypatch):
    deps = arm(quick_bed, monkeypatch, "attach_volume", False, KeyboardInterrupt())
    real = deps.provider.real
    delete_instance = real.delete_instance
    pressed = []

    def impatient(instance_id):
        if not pressed:
            pressed.append(1)
            raise KeyboardInterrupt  # Ctrl-C again, as the rollback starts
        return delete_instance(instance_id)

    monkeypatch.setattr(real, "delete_instance", impatient)
    with pytest.raises(KeyboardInterrupt):
        run_stage(quick_bed.request(), deps)
    nothing_left(quick_bed, deps)
    assert "Ctrl-C ignored" in deps.progress.text


def test_sigint_during_the_rollback_only_warns(quick_bed, monkeypatch):
    deps = arm(quick_bed, monkeypatch, "attach_volume", False, KeyboardInterrupt())
    real = deps.provider.real
    delete_volume = real.delete_volume

    def signalled(volume_id):
        os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, mid-rollback
        return delete_volume(volume_id)

    monkeypatch.setattr(real, "delete_volume", signalled)
    with pytest.raises(KeyboardInterrupt):
        run_stage(quick_bed.request(), deps)
    nothing_left(quick_bed, deps)
    assert "Ctrl-C ignored: rolling back" in deps.progress.text
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -- what the network does ------------------------------------------------------------------

def test_an_ambiguous_create_buys_no_duplicate(quick_bed):
    quick_bed.emulator.inject("POST /instances", "ambiguous_create")
    quick_bed.emulator.inject("POST /blocks", "ambiguous_create")
    deps = quick_bed.deps()
    result = run_stage(quick_bed.request(), deps)
    instances, blocks = quick_bed.left()
    assert instances == [result.instance.id] and blocks == [result.volume.id]
    assert result.volume.attached_to == result.instance.id


def test_attaching_to_a_locked_instance_is_retried(make_bed):
    from launcher.emulator import ManualClock

    clock = ManualClock()
    bed = make_bed(timing=Timing.realistic(), clock=clock)
    client = client_for(bed.emulator.url, sleep=clock.advance)
    client.poll = PollPolicy(initial=0.5, factor=2.0, max_interval=2.0)
    deps = bed.deps(client=client)
    assert isinstance(deps.provider, VultrProvider)
    wait_ready = deps.provider.wait_instance_ready

    def ready_then_locked(instance_id, deadline_s):
        ready = wait_ready(instance_id, deadline_s)
        bed.emulator.state.lock_instance(instance_id, 20.0)  # busy right after boot
        return ready

    deps.provider.wait_instance_ready = ready_then_locked
    result = run_stage(bed.request(), deps)
    assert result.volume.attached_to == result.instance.id
    attaches = [e.status for e in bed.emulator.events if e.route == "/blocks/{id}/attach"]
    assert attaches[-1] == 204 and 400 in attaches  # "Server is currently locked", then attached
    assert clock() >= 23.0  # booting (3 s) and the lock (20 s) passed on the emulator's clock
    assert "wait: waiting for instance" in deps.progress.text


def test_the_volume_becomes_active_while_the_instance_boots(make_bed):
    """One state change waited out, not two in a row: the instance is created while its
    volume is still pending, and the volume is looked at again only after the boot."""
    from launcher.emulator import ManualClock

    clock = ManualClock()
    bed = make_bed(timing=Timing.realistic(), clock=clock)
    client = client_for(bed.emulator.url, sleep=clock.advance)
    result = run_stage(bed.request(), bed.deps(client=client))
    assert result.volume.attached_to == result.instance.id
    events = [e for e in bed.emulator.events if e.authorized]
    create_block = next(e for e in events if (e.method, e.route) == ("POST", "/blocks"))
    create_instance = next(e for e in events if (e.method, e.route) == ("POST", "/instances"))
    timing = Timing.realistic()
    assert create_instance.t - create_block.t < timing.block_active_s  # volume still pending
    block_looks = [e for e in events if (e.method, e.route) == ("GET", "/blocks/{id}")]
    assert block_looks and min(e.t for e in block_looks) >= create_instance.t + \
        timing.server_ok_s  # after the boot, when it is long active
    # Not the sum of the two (only the attach, which shows a moment later, comes after).
    assert clock() < timing.block_active_s + timing.server_ok_s + timing.attach_visible_s
