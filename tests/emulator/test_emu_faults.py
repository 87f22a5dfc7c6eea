"""Fault injection and rate limiting."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from launcher.emulator import Emulator, ManualClock, RateLimit, Timing

from .emuclient import EMU_KEY, Api, refusal


@pytest.mark.parametrize("kind", ["500", "502", "503"])
def test_5xx_fires_count_times_then_stops(emu, api, kind):
    emu.inject("POST /instances", kind, count=2)
    assert [api.post("/instances", {}).status_code for _ in range(3)] == [int(kind)] * 2 + [400]
    assert emu.state.list_instances(None, None, None) == []
    assert [e.fault for e in emu.events] == [kind, kind, None]
    assert emu.pending_faults() == []


def test_faults_match_only_their_route_and_accept_spec_templates(emu, api):
    emu.inject("GET /instances/{instance-id}", "503")
    assert len(emu.pending_faults()) == 1
    assert api.get("/instances").status_code == 200
    assert api.get("/instances/abc").status_code == 503
    assert api.get("/instances/abc").status_code == 404


def test_429_fault_has_retry_after(emu, api):
    emu.inject("GET /account", "429", retry_after=3)
    response = api.get("/account")
    assert refusal(response) == (429, "Rate limit reached. Please try again later.")
    assert response.headers["Retry-After"] == "3"
    assert api.get("/account").status_code == 200


def test_a_hang_times_the_client_out_and_stop_releases_it():
    emulator = Emulator(api_key=EMU_KEY, timing=Timing.instant(), rate_limit=RateLimit(None))
    api = Api(emulator.start())
    emulator.inject("GET /account", "hang", hang_s=30)
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.call("GET", "/account", timeout=0.3)
    began = time.monotonic()
    emulator.stop()
    assert time.monotonic() - began < 3.0
    assert emulator.events[-1].status is None and emulator.events[-1].fault == "hang"


def test_a_hang_can_end_in_504_or_a_dropped_connection(emu, api):
    emu.inject("GET /account", "hang", hang_s=0.2, then="504")
    assert refusal(api.get("/account"))[0] == 504
    emu.inject("GET /account", "hang", hang_s=0.2)
    with pytest.raises(requests.exceptions.ConnectionError):
        api.get("/account")


def test_ambiguous_create_really_creates(emu, api):
    emu.inject("POST /blocks", "ambiguous_create")
    response = api.post("/blocks", {"region": "sea", "size_gb": 10, "label": "once"})
    assert refusal(response) == (500, "Internal server error.")
    assert [b.label for b in emu.state.list_blocks()] == ["once"]
    assert emu.mutations()[-1].fault == "ambiguous_create"


@pytest.mark.parametrize(("args", "opts"), [
    (("POST /nowhere", "500"), {}), (("POST /instances", "404"), {}),
    (("POST /instances", "hang"), {"hang_s": 0}), (("POST /instances", "hang"), {"hang_s": 999}),
    (("POST /instances", "429"), {"retry_after": 0}), (("POST /instances", "500"), {"x": 1}),
])
def test_bad_injections_are_refused(emu, args, opts):
    with pytest.raises(ValueError):
        emu.inject(*args, **opts)


def test_rate_limit_refuses_then_recovers_on_its_own_clock():
    window = ManualClock()
    limit = RateLimit(per_second=3, clock=window)
    with Emulator(api_key=EMU_KEY, timing=Timing.instant(), rate_limit=limit) as emulator:
        api = Api(emulator.url)
        assert [api.get("/regions").status_code for _ in range(3)] == [200] * 3
        refused = api.get("/account")
        assert refusal(refused) == (429, "Rate limit reached. Please try again later.")
        assert int(refused.headers["Retry-After"]) >= 1
        window.advance(0.5)
        assert api.get("/regions").status_code == 429
        window.advance(0.5)
        assert api.get("/regions").status_code == 200


def test_rate_limit_in_real_time():
    with Emulator(api_key=EMU_KEY, timing=Timing.instant(),
                  rate_limit=RateLimit(per_second=5)) as emulator:
        api = Api(emulator.url)
        statuses = [api.get("/regions").status_code for _ in range(12)]
        assert 429 in statuses
        refused = next(r for r in (api.get("/regions") for _ in range(5)) if r.status_code == 429)
        threading.Event().wait(int(refused.headers["Retry-After"]))
        assert api.get("/regions").status_code == 200
