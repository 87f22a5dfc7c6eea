"""Every fault kind the emulator injects, met by the API layer's retry and resolve rules."""

from __future__ import annotations

import pytest
from conftest import client_for

from launcher.emulator import ManualClock, RateLimit
from launcher.errors import AmbiguousCreateError, TransientError
from launcher.vultr import BlockSpec, InstanceSpec, RetryPolicy, Timeouts

SNAPSHOT_ID = "5f0d2c1e-8a3b-4c6d-9e7f-0a1b2c3d4e5f"


def instance_spec(label: str = "run-7") -> InstanceSpec:
    return InstanceSpec("sea", "vcg-a100-6c-60g-40vram", label, snapshot_id=SNAPSHOT_ID,
                        tags=("run:7",))


def calls(emulator, method: str, route: str) -> list:
    return [e for e in emulator.events if e.method == method and e.route == route]


class Sleeps:
    """Records requested sleeps; optionally moves a manual clock instead of waiting."""

    def __init__(self, clock: ManualClock | None = None) -> None:
        self.seconds: list[float] = []
        self.clock = clock

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        if self.clock is not None:
            self.clock.advance(seconds)


@pytest.mark.parametrize("kind", ["500", "502", "503", "504"])
def test_server_errors_on_reads_are_retried(emulator, client, kind):
    emulator.inject("GET /account", kind, count=2)
    assert client.get_account().email
    assert [e.status for e in calls(emulator, "GET", "/account")] == [int(kind)] * 2 + [200]


def test_501_is_not_retried(emulator, client):
    emulator.inject("GET /account", "501", count=3)
    with pytest.raises(TransientError, match="HTTP 501"):
        client.get_account()
    assert len(calls(emulator, "GET", "/account")) == 1


def test_retry_after_is_honoured(emulator):
    sleeps = Sleeps()
    emulator.inject("GET /account", "429", retry_after=7)
    with client_for(emulator.url, sleep=sleeps) as client:
        client.get_account()
    assert sleeps.seconds == [7.0]


def test_retry_after_is_capped(emulator):
    sleeps = Sleeps()
    emulator.inject("GET /account", "429", retry_after=600)
    policy = RetryPolicy(retry_after_cap=30, deadline_s=1000)
    with client_for(emulator.url, sleep=sleeps, policy=policy) as client:
        client.get_account()
    assert sleeps.seconds == [30.0]


def test_rate_limit_is_ridden_out_by_waiting_as_told(make_emulator):
    window = ManualClock()
    emulator = make_emulator(rate_limit=RateLimit(per_second=3, clock=window))
    sleeps = Sleeps(window)
    with client_for(emulator.url, sleep=sleeps) as client:
        for _ in range(10):
            client.list_regions()
    statuses = [e.status for e in emulator.events]
    assert statuses.count(200) == 10 and 429 in statuses
    assert sleeps.seconds and all(s >= 1 for s in sleeps.seconds)


def test_a_hung_read_times_out_and_is_retried(emulator):
    emulator.inject("GET /account", "hang", hang_s=5)
    with client_for(emulator.url, timeouts=Timeouts(connect=1, read=0.3)) as client:
        assert client.get_account().email
    assert [e.status for e in calls(emulator, "GET", "/account")][-1] == 200


def test_an_ambiguous_create_is_resolved_without_a_duplicate(emulator, client):
    emulator.inject("POST /instances", "ambiguous_create")
    created = client.create_instance(instance_spec())
    assert [i.id for i in emulator.state.list_instances(None, None, None)] == [created.id]
    assert len(calls(emulator, "POST", "/instances")) == 1


def test_an_ambiguous_block_create_is_resolved_without_a_duplicate(emulator, client):
    emulator.inject("POST /blocks", "ambiguous_create")
    created = client.create_block(BlockSpec("sea", 1000, "run-7"))
    assert [b.id for b in emulator.state.list_blocks()] == [created.id]


def test_a_hung_create_that_did_nothing_is_sent_again_once(emulator):
    emulator.inject("POST /instances", "hang", hang_s=5)
    with client_for(emulator.url, timeouts=Timeouts(connect=1, read=0.3)) as client:
        created = client.create_instance(instance_spec())
    assert [i.id for i in emulator.state.list_instances(None, None, None)] == [created.id]
    emulator.stop()  # releases the hung handler, which logs its event
    posts = calls(emulator, "POST", "/instances")
    assert [(e.status, e.fault) for e in posts] == [(202, None), (None, "hang")]


def test_a_create_that_cannot_be_looked_up_is_reported_not_repeated(emulator, client):
    emulator.inject("POST /instances", "ambiguous_create")
    emulator.inject("GET /instances", "503", count=50)
    with pytest.raises(AmbiguousCreateError) as caught:
        client.create_instance(instance_spec())
    assert "look for the instance" in str(caught.value)
    assert len(calls(emulator, "POST", "/instances")) == 1


def test_a_rate_limited_create_is_retried(emulator, client):
    emulator.inject("POST /instances", "429", retry_after=1)
    client.create_instance(instance_spec())
    assert [e.status for e in calls(emulator, "POST", "/instances")] == [429, 202]
    assert len(emulator.state.list_instances(None, None, None)) == 1


def test_a_failed_delete_is_sent_again_and_reports_done(emulator, client):
    instance = client.create_instance(instance_spec())
    emulator.inject("DELETE /instances/{id}", "hang", hang_s=5)
    with client_for(emulator.url, timeouts=Timeouts(connect=1, read=0.3)) as slow:
        assert slow.delete_instance(instance.id) is True
    assert emulator.state.list_instances(None, None, None) == []
