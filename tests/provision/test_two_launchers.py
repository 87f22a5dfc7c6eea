"""Two launchers on one run id (two machines: two lock directories, one cloud) whose create
hangs or fails ambiguously: the rollback deletes only what its own invocation created and
still owns, never the other launcher's live instance or the volume attached to it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from launcher.emulator import ManualClock
from launcher.errors import LauncherError, TransientError
from launcher.provision import LaunchResult, RollbackIncompleteError, run_stage
from provision.test_failover_rollback import Faulty

RUN = "smoke-20261118-120000"


def race(bed, monkeypatch, tmp_path, after_other=lambda: None):
    """Launcher A's deps whose confirmation first lets launcher B (another lock directory,
    its own clock) launch the same run id to the end; ``after_other`` then arms A's fault.
    Returns A's deps and a list that receives B's result."""
    monkeypatch.setenv("LAUNCHER_LOCK_DIR", str(tmp_path / "locks-a"))
    other: list[LaunchResult] = []

    def confirm(plan) -> bool:
        monkeypatch.setenv("LAUNCHER_LOCK_DIR", str(tmp_path / "locks-b"))
        clock = ManualClock()
        deps_b = replace(bed.deps(), monotonic=clock, sleep=clock.advance)
        result = run_stage(bed.request(run_id=RUN), deps_b)
        assert isinstance(result, LaunchResult)
        other.append(result)
        after_other()
        return True

    return bed.deps(confirm=confirm), other


def only_the_other_launch_is_left(bed, other: list[LaunchResult]) -> None:
    (b,) = other
    assert bed.left() == ([b.instance.id], [b.volume.id])
    assert bed.emulator.state.blocks[b.volume.id].attached_to == b.instance.id


def test_an_instance_create_that_timed_out_rolls_back_only_its_own_instance(
        quick_bed, monkeypatch, tmp_path):
    deps, other = race(quick_bed, monkeypatch, tmp_path)
    timeout = TransientError("read timed out", method="POST", path="/instances")
    deps.provider = Faulty(deps.provider, "create_instance", timeout, after=True)
    with pytest.raises(TransientError, match="read timed out"):
        run_stage(quick_bed.request(run_id=RUN), deps)
    only_the_other_launch_is_left(quick_bed, other)  # A's own instance (no id known) went


def test_an_ambiguous_instance_create_never_adopts_the_other_launchers_instance(
        quick_bed, monkeypatch, tmp_path):
    deps, other = race(quick_bed, monkeypatch, tmp_path, lambda: quick_bed.emulator.inject(
        "POST /instances", "ambiguous_create"))
    result = run_stage(quick_bed.request(run_id=RUN), deps)
    assert isinstance(result, LaunchResult)
    assert result.instance.id != other[0].instance.id  # its own, proved by its launch tag


def test_a_hung_volume_create_keeps_the_volume_attached_to_the_other_launch(
        quick_bed, monkeypatch, tmp_path):
    """A's create hangs and is answered 504 without being done; looking it up by label finds
    B's volume, which A cannot attach. A's rollback must not detach and delete it."""
    deps, other = race(quick_bed, monkeypatch, tmp_path, lambda: quick_bed.emulator.inject(
        "POST /blocks", "hang", hang_s=0.01, then="504"))
    with pytest.raises(RollbackIncompleteError) as failed:
        run_stage(quick_bed.request(run_id=RUN), deps)
    only_the_other_launch_is_left(quick_bed, other)
    b = other[0]
    message = str(failed.value)
    assert f"volume {b.volume.id}" in message
    assert f"kept: it is attached to instance {b.instance.id}, which this launch did not " \
           "create" in message
    assert f"{quick_bed.emulator.url}/blocks/{b.volume.id}" in message  # how to delete it later


def test_an_ambiguous_volume_create_deletes_its_own_volume_only(quick_bed, monkeypatch,
                                                                tmp_path):
    """A's volume is made but the answer is lost; the look-up finds two volumes with the
    run's label. The rollback deletes A's (detached) and keeps B's (attached to B's)."""
    deps, other = race(quick_bed, monkeypatch, tmp_path, lambda: quick_bed.emulator.inject(
        "POST /blocks", "ambiguous_create"))
    with pytest.raises(LauncherError) as failed:
        run_stage(quick_bed.request(run_id=RUN), deps)
    only_the_other_launch_is_left(quick_bed, other)
    assert f"attached to instance {other[0].instance.id}" in str(failed.value)
