"""The API key never shows: not in reprs, exception texts, tracebacks, logs or printed output."""

from __future__ import annotations

import logging
import traceback

import pytest

from launcher.errors import LauncherError
from launcher.secrets import Secret
from launcher.vultr import InstanceSpec, Timeouts, VultrClient, VultrSettings


def _chain(err: BaseException):
    while err is not None:
        yield err
        err = err.__cause__ or err.__context__


def test_key_never_leaks(stub, make_http, closed_port_url, fake_key, caplog, capsys):
    caplog.set_level(logging.DEBUG)  # every logger, urllib3 included
    echo = f"bad token {fake_key}"
    stub.add("GET", "/account", stub.error(401, echo))
    stub.add("GET", "/instances/i-1", stub.error(500, echo))
    stub.add("POST", "/instances", stub.error(500, echo))
    stub.add("GET", "/instances", stub.error(403, echo))
    stub.add("GET", "/blocks/b-1", stub.Reply(200, {"block": {"id": "b-1"}}, delay=0.5))
    stub.add("DELETE", "/blocks/b-1", stub.Reply(drop=True))

    client = VultrClient(make_http())
    slow = VultrClient(make_http(timeouts=Timeouts(connect=1.0, read=0.1)))
    refused = VultrClient(make_http(base_url=closed_port_url))
    spec = InstanceSpec("ewr", "vcg-1", "run", os_id=1, user_data=f"key: {fake_key}")
    calls = [
        client.get_account,
        lambda: client.get_instance("i-1"),
        lambda: client.create_instance(spec),
        lambda: slow.get_block("b-1"),
        lambda: client.delete_block("b-1"),
        refused.get_account,
    ]
    texts = [
        repr(client),
        str(client),
        repr(client.http),
        repr(spec),
        repr(Secret(fake_key)),
        f"{Secret(fake_key)}",
        repr(VultrSettings(api_key=Secret(fake_key))),
    ]
    for call in calls:
        with pytest.raises(LauncherError) as info:
            call()
        err = info.value
        texts += [str(err), repr(err), err.hint or "", *traceback.format_exception(err)]
        for linked in _chain(err):
            assert isinstance(linked, LauncherError), f"{type(linked)} hangs off {err!r}"
            texts.append(str(vars(linked)))

    captured = capsys.readouterr()
    texts += [caplog.text, captured.out, captured.err]
    assert "launcher.vultr" in caplog.text  # the debug lines were really captured
    leaks = [t for t in texts if fake_key in t]
    assert leaks == []
    assert "***" in caplog.text or any("***" in t for t in texts)  # the echo was scrubbed


def test_debug_log_lines_carry_method_path_status_duration_attempt_only(stub, http, caplog):
    stub.add("POST", "/instances", stub.Reply(202, {"instance": {"id": "i"}}))
    with caplog.at_level(logging.DEBUG, logger="launcher.vultr"):
        body = {"region": "ewr", "plan": "vc2-1c-1gb", "os_id": 1, "user_data": "c2VjcmV0"}
        http.request("POST", "/instances", json=body, expect=(202,))
    (record,) = [r for r in caplog.records if r.name == "launcher.vultr"]
    assert record.getMessage().startswith("POST /instances -> 202 in ")
    assert record.getMessage().endswith("(attempt 1)")
    assert "c2VjcmV0" not in caplog.text
