"""Issue 14, point 12: a wrong VULTR_API_URL is explained, not just refused."""

from __future__ import annotations

import pytest
from conftest import client_for

from launcher.errors import ApiError, NotFoundError


def test_https_to_a_plain_http_server_says_so_and_how_to_write_it(stub, make_http):
    plain = stub.url  # http://127.0.0.1:PORT/v2
    port = plain.split(":")[2].split("/")[0]
    http = make_http(base_url=plain.replace("http://", "https://"))
    with pytest.raises(ApiError) as raised:
        http.request("GET", "/regions", auth=False)
    assert str(raised.value) == (
        f"GET /regions: https to 127.0.0.1:{port} failed: the server does not speak TLS; "
        f"not retried\nhint: it may speak plain http (the emulator does): "
        f"VULTR_API_URL=http://127.0.0.1:{port}/v2 (plain http is accepted only for a "
        "loopback host)")
    assert stub.received == []


def test_an_api_url_without_v2_gets_a_hint_naming_it(stub, make_http):
    root = stub.url.removesuffix("/v2")  # the stub, like Vultr, has nothing at /regions
    with pytest.raises(NotFoundError) as raised:
        make_http(base_url=root).request("GET", "/regions", auth=False)
    assert raised.value.hint == (f"VULTR_API_URL is {root}, without /v2: Vultr's API (and the "
                                 f"emulator) answer under /v2, e.g. {root}/v2")


def test_a_404_under_v2_is_not_blamed_on_the_url(emulator):
    with client_for(emulator.url) as client, pytest.raises(NotFoundError) as raised:
        client.get_instance("no-such-instance")
    assert raised.value.hint is None
