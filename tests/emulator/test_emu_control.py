"""The emulator's own control endpoint (``/_emulator/...``): faults and stock over HTTP.

It is not part of Vultr's API: it must never answer under ``/v2``, must want the emulator's
own key from a loopback client, and must refuse bad input with a 400 naming the field.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import requests
from conftest import client_for
from support.contract import spec_path

from launcher.cli import main
from launcher.emulator.control import CONTROL_PREFIX
from launcher.emulator.routes import ROUTE_KEYS
from launcher.emulator.wire import Request
from launcher.errors import OutOfCapacityError
from launcher.vultr import InstanceSpec

from .emuclient import A100_40, EMU_KEY, SNAPSHOT_ID, TIMEOUT, refusal

CAPACITY = {"route": "POST /instances", "kind": "refuse", "count": 2, "error": "out_of_stock"}


class Control:
    """requests against one emulator's control endpoint, with its key."""

    def __init__(self, url: str, key: str | None = EMU_KEY) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}

    def call(self, method: str, path: str, body: object = None, **kwargs) -> requests.Response:
        if body is not None:
            kwargs["json"] = body
        return requests.request(method, self.url + path, headers=self.headers,
                                timeout=TIMEOUT, **kwargs)


@pytest.fixture
def control(emu) -> Control:
    return Control(emu.control_url)


def _spec(label: str = "ctl") -> InstanceSpec:
    return InstanceSpec("sea", A100_40, label, snapshot_id=SNAPSHOT_ID)


def test_an_injected_capacity_refusal_reaches_a_real_client_call(emu, control):
    armed = control.call("POST", "/faults", CAPACITY)
    assert armed.status_code == 201
    assert armed.json()["fault"] == {"route": "POST /instances", "kind": "refuse",
                                     "remaining": 2, "status": 400, "error": "out_of_stock"}
    assert control.call("GET", "/faults").json()["faults"][0]["remaining"] == 2
    with client_for(emu.url, EMU_KEY) as client:
        for _ in range(2):
            with pytest.raises(OutOfCapacityError, match="not available in the selected region"):
                client.create_instance(_spec())
        assert client.create_instance(_spec()).label == "ctl"  # the third create goes through
    assert [e.fault for e in emu.events if e.method == "POST"] == ["refuse", "refuse", None]
    assert control.call("GET", "/faults").json() == {"faults": []}


def test_status_kinds_as_numbers_and_clearing_them(emu, control):
    assert control.call("POST", "/faults", {"route": "GET /v2/account", "kind": 503}).status_code \
        == 201
    assert control.call("POST", "/faults", {"route": "GET /instances/{instance-id}",
                                            "kind": "429", "retry_after": 2}).status_code == 201
    assert [(f.route, f.kind) for f in emu.pending_faults()] == [
        ("GET /account", "503"), ("GET /instances/{id}", "429")]
    assert control.call("DELETE", "/faults").json() == {"cleared": 2}
    assert emu.pending_faults() == []


@pytest.mark.parametrize(("body", "words"), [
    ({"kind": "500"}, ['route: expected "METHOD /path"']),
    ({"route": "POST /instance", "kind": "500"},
     ["route: no such route 'POST /instance'", "POST /instances"]),
    ({"route": "POST /instances", "kind": "boom"},
     ["kind: unknown fault kind 'boom'", "500..599, 429, hang, ambiguous_create, refuse"]),
    ({"route": "POST /instances", "kind": "404"}, ["kind: unknown fault kind '404'"]),
    ({"route": "POST /instances"}, ["kind: expected one of 500..599", "not null (or missing)"]),
    ({"route": "POST /instances", "kind": ["500"]}, ["kind: expected one of", '["500"]']),
    ({"route": "POST /instances", "kind": "500", "count": 0}, ["count: expected an integer"]),
    ({"route": "POST /instances", "kind": "500", "count": True}, ["count: expected an integer"]),
    ({"route": "POST /instances", "kind": "500", "count": "2"}, ["count: expected an integer"]),
    ({"route": "POST /instances", "kind": "503", "colour": "red"},
     ["takes no option(s) ['colour']", "its options: none"]),
    ({"route": "POST /instances", "kind": "refuse", "error": "made_up"},
     ["options of 'refuse'", "out_of_stock", "instance_locked"]),
    ({"route": "POST /instances", "kind": "429", "retry_after": True}, ["retry_after"]),
    ({"route": "POST /instances", "kind": "hang", "hang_s": "5"}, ["hang_s <= 300"]),
    ({"route": "POST /instances", "kind": "hang", "hang_s": 1e9}, ["hang_s <= 300"]),
    ([1, 2], ["the body must be a JSON object"]),
])
def test_bad_fault_bodies_are_refused_naming_the_field(emu, control, body, words):
    response = control.call("POST", "/faults", body)
    status, text = refusal(response)
    assert status == 400
    assert all(word in text for word in words), text
    assert emu.pending_faults() == []


def test_a_body_that_is_not_json_is_refused(emu, control):
    response = control.call("POST", "/faults", data=b'{"route": "POST /instances",')
    status, text = refusal(response)
    assert status == 400 and text.startswith("the body is not valid JSON")
    assert refusal(control.call("POST", "/faults"))[1] == "the body must be a JSON object"


def test_stock_changes_show_in_availability_and_in_offers(emu, control, monkeypatch, capsys):
    sold_out = control.call("POST", "/stock", {"region": "sea", "plan": A100_40,
                                               "in_stock": False})
    assert sold_out.status_code == 200 and A100_40 not in sold_out.json()["available_plans"]
    with client_for(emu.url, EMU_KEY) as client:
        assert A100_40 not in client.region_availability("sea").available_plans
        with pytest.raises(OutOfCapacityError):
            client.create_instance(_spec())
    control.call("POST", "/stock", {"region": "sea", "plan": A100_40, "in_stock": True})
    assert A100_40 in control.call("GET", "/stock").json()["stock"]["sea"]
    # the plan `offers --min-vram 40` picks by default, sold out from the shell
    monkeypatch.setenv("VULTR_API_URL", emu.url)
    assert main(["offers", "--min-vram", "40", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)["pick"]
    assert (first["plan"], first["region"]) == ("vcg-l40s-16c-180g-48vram", "sjc")
    emptied = control.call("POST", "/stock", {"region": "sjc", "plans": []})
    assert emptied.json() == {"region": "sjc", "available_plans": []}
    assert main(["offers", "--min-vram", "40", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pick"]["region"] != "sjc"


@pytest.mark.parametrize(("body", "words"), [
    ({"region": "mars", "plans": []}, ["region: expected one of", "sea", 'not "mars"']),
    ({"plans": []}, ["region: expected one of"]),
    ({"region": "sea"}, ["give either plans", "or plan and in_stock"]),
    ({"region": "sea", "plans": [], "plan": A100_40}, ["not both"]),
    ({"region": "sea", "plans": "vc2-1c-1gb"}, ["plans: expected a list"]),
    ({"region": "sea", "plans": ["vcg-nope"]}, ['plans: unknown plan id "vcg-nope"']),
    ({"region": "sea", "plan": A100_40, "in_stock": "no"}, ["in_stock: expected true or false"]),
    ({"region": "sea", "plan": A100_40, "in_stock": False, "count": 3},
     ["unknown field(s) ['count']"]),
])
def test_bad_stock_bodies_are_refused_naming_the_field(emu, control, body, words):
    before = emu.stock("sea")
    status, text = refusal(control.call("POST", "/stock", body))
    assert status == 400
    assert all(word in text for word in words), text
    assert emu.stock("sea") == before


def test_the_control_endpoint_is_not_under_v2_nor_in_the_api(emu, control):
    key = {"Authorization": f"Bearer {EMU_KEY}"}
    for path in ("/_emulator/faults", "/_emulator/stock"):
        response = requests.get(emu.url + path, headers=key, timeout=TIMEOUT)
        assert refusal(response) == (404, "Invalid route.")
    assert not any("_emulator" in route for route in ROUTE_KEYS)
    assert emu.control_url == emu.url.removesuffix("/v2") + CONTROL_PREFIX
    assert "_emulator" not in spec_path().read_text(encoding="utf-8")
    control.call("GET", "/faults")
    control.call("POST", "/faults", CAPACITY)
    # control calls are not API traffic: no events (only the two 404s above), no mutations
    assert [e.status for e in emu.events] == [404, 404] and emu.mutations() == []


def test_unknown_control_paths_and_methods(control):
    assert refusal(control.call("GET", "/nope")) == (
        404, "no control endpoint '/_emulator/nope': one of /_emulator/faults, /_emulator/stock")
    response = control.call("PUT", "/stock", {})
    assert refusal(response) == (405, "/_emulator/stock takes GET, POST")
    assert response.headers["Allow"] == "GET, POST"


def test_the_control_endpoint_wants_the_emulators_own_key(emu):
    emu.add_key("another-key-entirely", "self-destruct")
    for key in (None, "wrong-key", "another-key-entirely"):
        status, text = refusal(Control(emu.control_url, key).call("POST", "/faults", CAPACITY))
        assert status == 401 and "Authorization: Bearer $VULTR_KEY" in text
        assert key is None or key not in text
    assert emu.pending_faults() == []


def test_the_control_endpoint_refuses_a_client_that_is_not_loopback(emu):
    app = emu._app  # the pipeline; the server itself binds 127.0.0.1 only
    body = json.dumps(CAPACITY).encode()
    request = Request("POST", CONTROL_PREFIX + "/faults", {},
                      {"Authorization": f"Bearer {EMU_KEY}"}, body, client="203.0.113.7")
    answer = app.handle(request)
    assert answer is not None and answer.status == 403
    assert b"loopback clients only" in answer.body
    assert emu.pending_faults() == []
    assert app.handle(replace(request, client="::1")).status == 201  # IPv6 loopback is fine
