"""Auth: the key is required except on the catalogue, compared safely, and never echoed."""

from __future__ import annotations

import pytest

from .emuclient import EMU_KEY, Api, refusal

PUBLIC = ["/regions", "/regions/sjc/availability", "/plans", "/plans-metal", "/os"]
PRIVATE = ["/instances", "/blocks", "/snapshots", "/ssh-keys", "/account", "/users"]


@pytest.mark.parametrize("path", PRIVATE)
@pytest.mark.parametrize("key", [None, "wrong-key", EMU_KEY + "x", ""])
def test_private_endpoints_refuse_a_missing_or_wrong_key(emu, path, key):
    response = Api(emu.url, key=key).get(path)
    assert refusal(response) == (401, "Invalid API token.")


def test_a_non_bearer_scheme_is_refused(emu):
    response = Api(emu.url, key=None).call("GET", "/account",
                                           headers={"Authorization": f"Basic {EMU_KEY}"})
    assert response.status_code == 401


def test_mutations_without_the_key_change_nothing(emu):
    response = Api(emu.url, key="nope").post("/blocks", {"region": "sea", "size_gb": 10})
    assert response.status_code == 401
    assert emu.state.list_blocks() == []
    assert emu.mutations() == []
    assert emu.events[-1].mutating and not emu.events[-1].authorized


@pytest.mark.parametrize("path", PUBLIC)
def test_public_catalogue_needs_no_key(emu, path):
    assert Api(emu.url, key=None).get(path).status_code == 200


def test_the_key_never_appears_in_responses_events_or_exchanges(emu, api):
    seen = []
    emu.add_listener(seen.append)
    api.get("/account")
    api.create_instance()
    Api(emu.url, key="wrong").get("/instances")
    api.get("/no-such-route")
    texts = [repr(emu.events), repr(emu), repr(emu.state.__dict__)]
    for exchange in seen:
        texts += [repr(exchange), exchange.response_body.decode(), repr(exchange.request_headers)]
    assert all(EMU_KEY not in text for text in texts)
    assert seen[0].request_headers["Authorization"] == "Bearer <redacted>"


def test_an_empty_key_is_rejected_at_construction():
    from launcher.emulator import Emulator

    with pytest.raises(ValueError):
        Emulator(api_key="")


# -- more keys, and keys limited to addresses (Vultr's API access control) ---------------------

def test_an_added_key_works_from_anywhere_and_events_name_it(emu):
    from support.keys import FAKE_SELF_DESTRUCT_KEY

    emu.add_key(FAKE_SELF_DESTRUCT_KEY, "self-destruct")
    response = Api(emu.url, key=FAKE_SELF_DESTRUCT_KEY).post(
        "/blocks", {"region": "sea", "size_gb": 40, "block_type": "storage_opt"})
    assert response.status_code == 202
    assert emu.events[-1].key == "self-destruct" and emu.events[-1].authorized
    Api(emu.url).get("/account")
    assert emu.events[-1].key == "main"
    assert FAKE_SELF_DESTRUCT_KEY not in repr(emu.events) + repr(emu.state.__dict__)


def test_a_key_limited_to_other_addresses_gets_vultrs_401(emu):
    from support.keys import FAKE_FENCED_KEY

    emu.add_key(FAKE_FENCED_KEY, "fenced", allowed_ips=["203.0.113.7"])
    fenced = Api(emu.url, key=FAKE_FENCED_KEY)
    assert refusal(fenced.get("/blocks")) == (401, "Unauthorized IP address: 127.0.0.1")
    response = fenced.post("/blocks", {"region": "sea", "size_gb": 40})
    assert response.status_code == 401 and emu.state.list_blocks() == []
    assert emu.mutations() == [] and emu.events[-1].key is None
    assert FAKE_FENCED_KEY not in response.text + repr(emu.events)


def test_a_key_whose_list_holds_the_clients_address_is_accepted(emu):
    from support.keys import FAKE_FENCED_KEY

    emu.add_key(FAKE_FENCED_KEY, "fenced", allowed_ips=["203.0.113.7", "127.0.0.1"])
    assert Api(emu.url, key=FAKE_FENCED_KEY).get("/instances").status_code == 200


def test_an_unknown_key_is_still_an_invalid_token_and_names_must_differ(emu):
    from support.keys import FAKE_SELF_DESTRUCT_KEY, FAKE_UNKNOWN_KEY

    emu.add_key(FAKE_SELF_DESTRUCT_KEY, "self-destruct")
    assert refusal(Api(emu.url, key=FAKE_UNKNOWN_KEY).get("/blocks")) == (
        401, "Invalid API token.")
    with pytest.raises(ValueError, match="already has a key named"):
        emu.add_key(FAKE_UNKNOWN_KEY, "self-destruct")
