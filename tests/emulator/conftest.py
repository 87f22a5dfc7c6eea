"""Fixtures for the emulator's tests: a started emulator and a tiny client for it."""

from __future__ import annotations

import pytest

from launcher.emulator import Emulator, ManualClock, Timing

from .emuclient import EMU_KEY, Api


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1000.0)


@pytest.fixture
def emu(make_emulator) -> Emulator:
    """Everything instant, no rate limit; contract-checked (see tests/conftest.py)."""
    return make_emulator(api_key=EMU_KEY)


@pytest.fixture
def slow_emu(make_emulator, clock: ManualClock) -> Emulator:
    """Realistic timing on a manual clock: nothing moves until the test advances it."""
    return make_emulator(api_key=EMU_KEY, timing=Timing.realistic(), clock=clock)


@pytest.fixture
def api(emu: Emulator) -> Api:
    return Api(emu.url)


@pytest.fixture
def slow_api(slow_emu: Emulator) -> Api:
    return Api(slow_emu.url)
