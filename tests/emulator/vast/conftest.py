"""Fixtures: a Vast emulator on a manual clock, and a tiny urllib client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from support.keys import EMULATOR_TEST_KEY

from launcher.emulator.vast import ManualClock, VastEmulator, VastTiming

# A key the suite-wide scanner (tests/conftest.py) looks for in every output.
VAST_KEY = EMULATOR_TEST_KEY


def call(url: str, method: str = "GET", body: object = None, key: str | None = VAST_KEY):
    """(status, parsed JSON or text, headers) of one request; never raises for HTTP errors."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if key is not None:
        req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, raw, headers = resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        status, raw, headers = err.code, err.read(), dict(err.headers)
    try:
        return status, json.loads(raw), headers
    except ValueError:
        return status, raw.decode(), headers


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def vast(clock):
    with VastEmulator(api_key=VAST_KEY, clock=clock, timing=VastTiming.realistic()) as emu:
        yield emu


def rent(emu: VastEmulator, offer_id: int = 10_000_001, **fields: object) -> dict:
    body = {"image": "pytorch/pytorch", "disk": 20, **fields}
    status, answer, _ = call(f"{emu.url}/asks/{offer_id}/", "PUT", body)
    assert status == 200, answer
    return answer
