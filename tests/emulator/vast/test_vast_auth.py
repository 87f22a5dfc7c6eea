"""The account key does everything; an instance's key only shows/starts/stops/destroys it."""

from __future__ import annotations

import pytest

from tests.emulator.vast.conftest import VAST_KEY, call, rent


def test_no_key_or_a_wrong_key_is_401_in_vasts_words(vast):
    for key in (None, "not-the-key"):
        status, body, _ = call(f"{vast.url}/users/current/", key=key)
        assert (status, body) == (401, {"success": False, "error": "auth_error",
                                        "msg": "Invalid user key"})


def test_the_instance_key_starts_stops_shows_and_destroys_its_own_instance(vast):
    answer = rent(vast)
    own, key = answer["new_contract"], answer["instance_api_key"]
    url = f"{vast.url}/instances/{own}/"
    assert call(url, key=key)[1]["instances"]["id"] == own
    assert call(url, "PUT", {"state": "stopped"}, key=key)[1] == {"success": True}
    assert call(url, "PUT", {"state": "running"}, key=key)[1] == {"success": True}
    assert call(url, "DELETE", key=key)[1] == {"success": True}
    assert call(url, key=key)[0] == 401  # the key died with its instance
    assert vast.mutations()[-1].key == f"instance:{own}"


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/instances/{other}/", None),
    ("DELETE", "/instances/{other}/", None),
    ("PUT", "/instances/{other}/", {"state": "stopped"}),
    ("PUT", "/instances/{own}/", {"label": "renamed"}),
    ("PUT", "/instances/{own}/", {"state": "stopped", "label": "renamed"}),
    ("POST", "/bundles/", {}),
    ("PUT", "/asks/10000005/", {"image": "x", "disk": 10}),
    ("GET", "/instances/", None),
    ("PUT", "/instances/request_logs/{own}/", {}),
    ("GET", "/users/current/", None),
    ("GET", "/ssh/", None),
])
def test_the_instance_key_may_do_nothing_else(vast, method, path, body):
    own = rent(vast, 10_000_001)
    other = rent(vast, 10_000_002)["new_contract"]
    url = vast.url + path.format(own=own["new_contract"], other=other)
    status, answer, _ = call(url, method, body, key=own["instance_api_key"])
    assert status == 403 and answer["error"] == "not_authorized"
    assert call(f"{vast.url}/instances/{other}/")[1]["instances"]["actual_status"] is None
    assert call(f"{vast.base}/api/v1/instances/", key=own["instance_api_key"])[0] == 403


def test_keys_never_reach_events_reprs_or_exchanges(vast):
    seen = []
    vast.add_listener(seen.append)
    answer = rent(vast)
    key = answer["instance_api_key"]
    call(f"{vast.url}/instances/{answer['new_contract']}/", key=key)
    text = repr(vast.events) + repr(vast) + repr(vast.state.get(answer["new_contract"]))
    text += repr([(x.request_headers, x.request_body) for x in seen])
    assert VAST_KEY not in text and key not in text
    assert seen[-1].request_headers["Authorization"] == "Bearer <redacted>"
