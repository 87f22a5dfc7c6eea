"""stop_all: every stop runs, also after one failed; the first error comes out."""

from __future__ import annotations

import pytest

from launcher.demo.bed import stop_all


def test_every_step_runs_and_the_first_error_is_raised():
    ran: list[str] = []

    def fails(name: str):
        def step() -> None:
            ran.append(name)
            raise RuntimeError(name)
        return step

    with pytest.raises(RuntimeError, match="^hypervisor$"):
        stop_all(fails("hypervisor"), None, lambda: ran.append("emulator"), fails("s3"),
                 lambda: ran.append("rmtree"))
    assert ran == ["hypervisor", "emulator", "s3", "rmtree"]


def test_nothing_to_stop_is_fine():
    stop_all(None, None)
