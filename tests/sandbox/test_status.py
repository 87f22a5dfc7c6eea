"""MachineViews: the status trio the sandbox and VM backends share."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from launcher.sandbox import status
from launcher.sandbox.status import MachineViews


@dataclass(frozen=True)
class View:
    instance_id: str
    state: str


class Backend(MachineViews[View]):
    final_states = ("exited",)

    def __init__(self, looks_until_exit: int) -> None:
        self._lock = threading.Lock()
        self._machines = {"a": "booting", "b": "running"}
        self.looks, self.until = 0, looks_until_exit

    @property
    def _entries(self) -> dict[str, str]:
        return self._machines

    def _view(self, entry: str) -> View:
        self.looks += 1
        done = entry == "booting" and self.looks > self.until
        return View("a" if entry == "booting" else "b", "exited" if done else entry)


def test_machines_in_creation_order_and_one_by_id():
    backend = Backend(looks_until_exit=100)
    assert [v.instance_id for v in backend.machines()] == ["a", "b"]
    assert backend.machine("b").state == "running"
    with pytest.raises(KeyError):
        backend.machine("zzz")


def test_wait_backs_off_until_a_final_state(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(status.time, "sleep", slept.append)
    view = Backend(looks_until_exit=6).wait("a", timeout=60)
    assert view.state == "exited"
    assert len(slept) == 6
    assert slept[0] == pytest.approx(0.05) and slept == sorted(slept)  # growing
    assert max(slept) <= status.LONGEST_LOOK_S


def test_wait_returns_the_last_state_at_the_deadline():
    view = Backend(looks_until_exit=10**6).wait("a", timeout=0.3)
    assert view.state == "booting"  # a timeout does not raise: the caller checks


def test_wait_for_other_states():
    assert Backend(looks_until_exit=10**6).wait("b", 5, states=("running",)).state == "running"
