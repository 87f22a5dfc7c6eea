"""Events, mutations, listeners and hypervisor hooks."""

from __future__ import annotations

import pytest

from launcher.emulator import Emulator, RateLimit, Timing

from .emuclient import EMU_KEY, SNAPSHOT_ID, Api, refusal


def test_events_record_each_request_without_header_values(emu, api):
    api.get("/plans", type="vcg")
    inst = api.create_instance()
    Api(emu.url, key=None).delete(f"/instances/{inst['id']}")
    first, create, refused = emu.events
    assert (first.seq, first.method, first.path, first.route, first.query, first.status) \
        == (1, "GET", "/v2/plans", "/plans", {"type": "vcg"}, 200)
    assert not first.mutating and first.fault is None
    assert create.mutating and create.authorized and create.status == 202
    assert refused.mutating and not refused.authorized and refused.status == 401
    assert refused.route == "/instances/{id}"
    assert emu.mutations() == [create]


def test_a_read_only_session_has_no_mutations(emu, api):
    for path in ("/plans", "/regions", "/instances", "/blocks", "/account"):
        api.get(path)
    assert emu.mutations() == [] and len(emu.events) == 5


def test_listener_sees_every_exchange_including_errors_and_faults(emu, api):
    seen = []
    emu.add_listener(seen.append)
    emu.inject("GET /account", "502")
    api.get("/account")
    api.get("/nope")
    api.post("/instances", {"region": "sea"})
    api.create_instance()
    assert [x.status for x in seen] == [502, 404, 400, 202]
    last = seen[-1]
    assert last.route == "/instances" and last.method == "POST" and b"snapshot_id" in \
        last.request_body
    assert last.response_headers["Content-Type"] == "application/json"
    assert b'"instance"' in last.response_body and last.query == {}


def test_a_failing_listener_does_not_break_the_server(emu, api):
    def boom(exchange):
        raise RuntimeError("listener bug")

    emu.add_listener(boom)
    assert api.get("/regions").status_code == 200
    assert emu.listener_errors == ["RuntimeError('listener bug')"]


class Recorder:
    """A hypervisor that writes down what it is told, optionally failing at one hook."""

    def __init__(self, fail_at: str | None = None) -> None:
        self.calls: list[tuple] = []
        self.fail_at = fail_at

    def _note(self, name: str, *records) -> None:
        if name == self.fail_at:
            raise RuntimeError(f"{name} failed")
        self.calls.append((name, *(r.id for r in records)))

    def instance_created(self, instance):
        self._note("instance_created", instance)

    def volume_attached(self, instance, block):
        assert block.attached_to == instance.id
        self._note("volume_attached", instance, block)

    def volume_detached(self, instance, block):
        assert block.attached_to == ""
        self._note("volume_detached", instance, block)

    def instance_deleted(self, instance):
        self._note("instance_deleted", instance)


def _emu_with(hypervisor) -> Emulator:
    return Emulator(api_key=EMU_KEY, timing=Timing.instant(), rate_limit=RateLimit(None),
                    hypervisor=hypervisor)


def test_hooks_are_called_in_order():
    recorder = Recorder()
    with _emu_with(recorder) as emulator:
        api = Api(emulator.url)
        inst, block = api.create_instance(), api.create_block()
        other = api.create_block()
        for b in (block, other):
            api.post(f"/blocks/{b['id']}/attach", {"instance_id": inst["id"], "live": True})
        api.post(f"/blocks/{other['id']}/detach", {"live": True})
        api.delete(f"/instances/{inst['id']}")
    i, b, o = inst["id"], block["id"], other["id"]
    assert recorder.calls == [
        ("instance_created", i), ("volume_attached", i, b), ("volume_attached", i, o),
        ("volume_detached", i, o), ("volume_detached", i, b), ("instance_deleted", i)]


@pytest.mark.parametrize("fail_at", ["instance_created", "volume_attached", "instance_deleted"])
def test_a_failing_hook_is_a_500_and_nothing_half_applied(fail_at):
    recorder = Recorder(fail_at=fail_at)
    with _emu_with(recorder) as emulator:
        api = Api(emulator.url)
        body = {"region": "sea", "plan": "vcg-a100-6c-60g-40vram", "snapshot_id": SNAPSHOT_ID}
        if fail_at == "instance_created":
            assert refusal(api.post("/instances", body)) == (500, "Internal server error.")
            assert emulator.state.list_instances(None, None, None) == []
            return
        inst, block = api.create_instance(), api.create_block()
        attach = {"instance_id": inst["id"], "live": fail_at != "volume_attached"}
        response = api.post(f"/blocks/{block['id']}/attach", attach)
        if fail_at == "volume_attached":
            assert response.status_code == 500
            assert emulator.state.get_block(block["id"]).attached_to == ""
            assert emulator.state.get_instance(inst["id"]).reboots == 0
            return
        assert refusal(api.delete(f"/instances/{inst['id']}"))[0] == 500
        assert emulator.state.get_instance(inst["id"])
        assert emulator.state.get_block(block["id"]).attached_to == inst["id"]
        assert "instance_deleted" in emulator.internal_errors[0]


def test_a_latency_delays_every_answer_and_stop_cuts_it_short(make_emulator):
    import contextlib
    import threading
    import time

    slow = make_emulator(api_key=EMU_KEY, latency_s=0.2)
    started = time.monotonic()
    assert Api(slow.url).get("/regions").status_code == 200
    assert time.monotonic() - started >= 0.2  # at least the latency: a lower bound, not a race
    hung = make_emulator(api_key=EMU_KEY, latency_s=600)

    def call() -> None:
        with contextlib.suppress(Exception):  # stop() may cut the connection: fine here
            Api(hung.url).get("/regions")

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.1)
    hung.stop(timeout=5)
    caller.join(10)
    assert not caller.is_alive()
    with pytest.raises(ValueError, match="latency_s"):
        Emulator(api_key=EMU_KEY, latency_s=-1)

