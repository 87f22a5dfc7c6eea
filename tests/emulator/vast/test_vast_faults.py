"""Injected faults, the /_emulator control endpoint, and the hypervisor hook."""

from __future__ import annotations

import threading

import pytest

from launcher.emulator.vast import VastEmulator, VastTiming
from tests.emulator.vast.conftest import VAST_KEY, call, rent

CREATE = "PUT /asks/{id}/"


def test_status_faults_answer_without_acting(vast):
    vast.inject(CREATE, "503", count=2)
    for _ in range(2):
        status, body, _ = call(f"{vast.url}/asks/10000001/", "PUT", {"image": "x"})
        assert status == 503 and body["success"] is False
    assert vast.state.listed() == []
    assert [e.fault for e in vast.events] == ["503", "503"]
    rent(vast)


def test_429_sends_no_retry_after_unless_asked(vast):
    vast.inject("POST /bundles/", "429")
    status, body, headers = call(f"{vast.url}/bundles/", "POST", {})
    assert (status, body) == (429, {"detail": "API requests too frequent"})
    assert "Retry-After" not in headers
    vast.inject("POST /api/v0/bundles/", "429", retry_after=3)  # the prefix may be given
    assert call(f"{vast.url}/bundles/", "POST", {})[2]["Retry-After"] == "3"


def test_ambiguous_create_rents_then_answers_500(vast):
    vast.inject(CREATE, "ambiguous_create")
    status, _, _ = call(f"{vast.url}/asks/10000003/", "PUT", {"image": "x", "disk": 10})
    assert status == 500
    [inst] = vast.state.listed()
    assert inst.offer_id == 10_000_003 and "performed for real" in vast.events[-1].note


def test_refuse_sends_a_table_error(vast):
    vast.inject(CREATE, "refuse", status=404, error="no_such_ask")
    status, body, _ = call(f"{vast.url}/asks/10000001/", "PUT", {"image": "x"})
    assert status == 404 and body["error"] == "invalid_args" and "no_such_ask" in body["msg"]
    with pytest.raises(ValueError, match="refuse needs"):
        vast.inject(CREATE, "refuse", error="out_of_stock")  # a Vultr text, not Vast's
    with pytest.raises(ValueError, match="no such route"):
        vast.inject("POST /instances", "500")


def test_hang_drops_the_connection(vast):
    vast.inject("GET /instances/{id}/", "hang", hang_s=0.2)
    with pytest.raises(OSError):
        import urllib.request
        req = urllib.request.Request(f"{vast.url}/instances/1/",
                                     headers={"Authorization": f"Bearer {VAST_KEY}"})
        urllib.request.urlopen(req, timeout=5)
    assert vast.events[-1].status is None


def control(emu, method, path, body=None, key=VAST_KEY):
    return call(emu.control_url + path, method, body, key=key)


def test_the_control_endpoint_arms_faults_and_flips_offers(vast):
    status, body, _ = control(vast, "POST", "/faults",
                              {"route": "PUT /asks/{id}/", "kind": "refuse", "status": 410,
                               "error": "ask_gone"})
    assert status == 201 and body["fault"]["route"] == CREATE
    assert control(vast, "GET", "/faults")[1]["faults"][0]["error"] == "ask_gone"
    assert control(vast, "DELETE", "/faults")[1] == {"cleared": 1}
    assert control(vast, "POST", "/offers", {"offer": 10000004, "rented": True})[0] == 200
    assert control(vast, "GET", "/offers")[1]["offers"]["10000004"]["rented"] is True
    assert call(f"{vast.url}/asks/10000004/", "PUT", {"image": "x"})[0] == 410
    assert control(vast, "POST", "/offers", {"offer": 1, "gone": True})[0] == 400
    status, body, _ = control(vast, "GET", "/faults", key="wrong")
    assert status == 401 and "$VAST_API_KEY" in body["error"] and VAST_KEY not in body["error"]


class Recorder:
    def __init__(self):
        self.calls = []

    def instance_created(self, inst):
        self.calls.append(("created", inst))

    def instance_stopped(self, inst):
        self.calls.append(("stopped", inst))

    def instance_started(self, inst):
        self.calls.append(("started", inst))

    def instance_deleted(self, inst):
        self.calls.append(("deleted", inst))


def test_the_hypervisor_hears_each_change_with_a_frozen_record():
    recorder = Recorder()
    with VastEmulator(api_key=VAST_KEY, timing=VastTiming.instant(), hypervisor=recorder) as emu:
        answer = rent(emu, env={"A": "1", "-p 22:22": "1"}, onstart="echo", args=["-c", "x"],
                      label="L")
        url = f"{emu.url}/instances/{answer['new_contract']}/"
        call(url, "PUT", {"state": "stopped"})
        call(url, "PUT", {"state": "running"})
        call(url, "DELETE")
        kinds = [k for k, _ in recorder.calls]
        assert kinds == ["created", "stopped", "started", "deleted"]
        inst = recorder.calls[0][1]
        assert (inst.id, inst.label, inst.image, inst.env, inst.onstart, inst.args,
                inst.disk_gb, inst.api_url) == (answer["new_contract"], "L", "pytorch/pytorch",
                                                {"A": "1"}, "echo", ("-c", "x"), 20.0, emu.url)
        assert inst.api_key == answer["instance_api_key"] and inst.api_key not in repr(inst)


def test_a_failing_hook_rolls_the_create_back():
    class Broken(Recorder):
        def instance_created(self, inst):
            raise RuntimeError("no containers today")

    with VastEmulator(api_key=VAST_KEY, timing=VastTiming.instant(), hypervisor=Broken()) as emu:
        assert call(f"{emu.url}/asks/10000001/", "PUT", {"image": "x"})[0] == 500
        assert emu.state.listed() == [] and emu.state.offers[10_000_001]["rented"] is False
        assert "instance_created" in emu.internal_errors[0]


def test_stop_releases_a_hang(vast):
    vast.inject("GET /users/current/", "hang", hang_s=60)
    outcome: list[str] = []

    def hung_call() -> None:
        try:
            call(f"{vast.url}/users/current/")
        except OSError as exc:  # the dropped connection
            outcome.append(type(exc).__name__)

    worker = threading.Thread(target=hung_call)
    worker.start()
    while vast.pending_faults() and worker.is_alive():  # taken: the handler now hangs
        worker.join(0.02)
    vast.stop(timeout=5)
    worker.join(5)
    assert not worker.is_alive() and outcome
