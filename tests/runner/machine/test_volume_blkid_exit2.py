"""blkid's exit status 2 ("nothing identified") counts as a blank volume only when blkid said
nothing at all: exit 2 with anything on stdout or stderr is unclear, so the volume phase fails
and never formats (launcher/runner/volume.py, ``probe``). Never formatting a volume that may
hold a filesystem is the volume phase's core promise."""

from __future__ import annotations

import stat

import pytest

from launcher.runner import volume
from launcher.runner.status import PhaseFailed

from .conftest import attach, make_context, make_spec


def exit_2_blkid(folder, stdout: str, stderr: str) -> str:
    """A ``blkid`` that says ``stdout``/``stderr`` and exits 2; returns its folder."""
    folder.mkdir()
    script = folder / "blkid"
    script.write_text("#!/bin/sh\n"
                      f'echo "$@" >> "{folder}/calls"\n'
                      f"printf '%s' '{stdout}'\n"
                      f"printf '%s' '{stderr}' >&2\n"
                      "exit 2\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(folder)


@pytest.mark.parametrize("stdout, stderr", [
    ("DEVNAME=/dev/vdb\nUUID=0000aaaa-1111-4bbb-8ccc-123456789abc\nTYPE=ext4\n", ""),
    ("DEVNAME=/dev/vdb\nPTUUID=abcd\nPTTYPE=dos\n", ""),
    ("", "blkid: /dev/vdb: probing failed"),
], ids=["a-filesystem", "a-partition-table", "only-stderr"])
def test_exit_2_with_output_is_never_taken_for_a_blank_volume(tmp_path, fakes, host, clock,
                                                              stdout, stderr):
    device = attach(host)
    tools = exit_2_blkid(tmp_path / "exit2", stdout, stderr)
    fakes.env["PATH"] = f"{tools}:{fakes.env['PATH']}"
    ctx = make_context(make_spec(tmp_path), fakes.env, clock=clock, sleep=clock.sleep)

    with pytest.raises(PhaseFailed) as caught:
        volume.prepare(ctx, host)

    assert fakes.calls("mkfs.ext4") == [] and fakes.calls("mkfs.xfs") == [], "formatted!"
    assert fakes.calls("mount") == []
    assert (tmp_path / "exit2" / "calls").read_text() == f"-p -o export {device}\n"
    assert caught.value.phase == "volume"
    assert f"blkid {device}: exit 2" in caught.value.reason
    assert "not formatting" in caught.value.reason
    assert not any("blank" in note for note in ctx.reporter.snapshot()["notes"])


def test_exit_2_saying_nothing_is_blank(tmp_path, fakes, host, clock):
    """The control: the same fake blkid, silent, is the one exit-2 case taken for blank."""
    device = attach(host)
    tools = exit_2_blkid(tmp_path / "exit2", "", "")
    fakes.env["PATH"] = f"{tools}:{fakes.env['PATH']}"
    ctx = make_context(make_spec(tmp_path), fakes.env, clock=clock, sleep=clock.sleep)
    assert volume.probe(ctx, str(device), host) == volume.Filesystem("", "")
