"""The API key appears in no exception, repr, log line or output, whatever goes wrong."""

from __future__ import annotations

import logging

import pytest

from launcher.errors import LauncherError
from launcher.vast import InstanceSpec, OfferQuery

from .conftest import FAKE_VAST_KEY


def _texts(error: BaseException) -> list[str]:
    found = [str(error), repr(error), str(getattr(error, "hint", ""))]
    cause = error.__cause__ or error.__context__
    return found + (_texts(cause) if cause else [])


def test_the_key_never_leaks(stub, client, caplog, capsys):
    caplog.set_level(logging.DEBUG)  # every logger, urllib3 included
    stub.add("POST", "/api/v0/bundles/",
             stub.error(400, "invalid_args", f"bad key {FAKE_VAST_KEY} in request"))
    stub.add("GET", "/api/v0/users/current",
             stub.error(401, "auth_error", f"Invalid user key {FAKE_VAST_KEY}"))
    stub.add("PUT", "/api/v0/asks/1/", stub.Reply(500, f"<p>{FAKE_VAST_KEY}</p>"))
    stub.add("GET", "/api/v1/instances/", stub.Reply(500, {"detail": FAKE_VAST_KEY}))
    stub.add("GET", "/api/v0/instances/3/", stub.Reply(200, {"instances": {"id": 3}}))
    texts: list[str] = []
    calls = [
        lambda: client.search_offers(OfferQuery()),
        client.show_user,
        lambda: client.create_instance(1, InstanceSpec(image="i", label="run-1")),
    ]
    for call in calls:
        with pytest.raises(LauncherError) as caught:
            call()
        texts += _texts(caught.value)
    texts += [repr(client), repr(client.http), repr(client.get_instance(3))]
    captured = capsys.readouterr()
    texts += [caplog.text, captured.out, captured.err]
    assert stub.received[0].headers["Authorization"] == f"Bearer {FAKE_VAST_KEY}"
    assert "launcher.vast" in caplog.text  # the debug lines were really captured
    assert [t for t in texts if FAKE_VAST_KEY in t] == []
    assert any("***" in t for t in texts)  # the echoes were scrubbed, not dropped
