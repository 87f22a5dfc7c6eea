"""volume.prepare: find the device (by-id link, sysfs serial, truncated serial), format only
a blank volume, never one with a filesystem or an unclear probe, mount once, fstab once."""

from __future__ import annotations

import os
import pwd
import shutil

import pytest
from support.need import need

from launcher.runner import volume
from launcher.runner.status import PhaseFailed
from launcher.runner.volume import HostPaths

from .conftest import IS_ROOT, MOUNT_ID, attach, make_context, make_spec


@pytest.fixture
def ctx_for(tmp_path, fakes, clock):
    def make(**changes):
        return make_context(make_spec(tmp_path, **changes), fakes.env, clock=clock,
                            sleep=clock.sleep)
    return make


def fstab_lines(host: HostPaths, mount_point: str) -> list[str]:
    return [line for line in host.fstab.read_text().splitlines()
            if not line.startswith("#") and line.split()[1] == mount_point]


def test_a_blank_volume_found_by_its_link_is_formatted_mounted_and_laid_out(
        ctx_for, host, fakes):
    device = attach(host, serial=None, link=MOUNT_ID)
    ctx = ctx_for()
    result = volume.prepare(ctx, host)
    mount_point = ctx.spec.volume.mount_point
    assert result.device == str(device) and result.formatted and result.fs_type == "ext4"
    assert fakes.calls("mkfs.ext4") == [["-q", "-L", "launcher-cache", "-E",
                                         "lazy_itable_init=1,lazy_journal_init=1", str(device)]]
    assert fakes.calls("blkid")[0] == ["-p", "-o", "export", str(device)]
    assert fakes.calls("mount") == [["-t", "ext4", "-o", "noatime", str(device), mount_point]]
    assert fstab_lines(host, mount_point) == [
        f"UUID={result.uuid} {mount_point} ext4 defaults,noatime,nofail 0 2"]
    assert "LABEL=root / ext4 defaults 0 1" in host.fstab.read_text()
    for name in ("data", "cache", "checkpoints", "reports", "logs"):
        assert os.path.isdir(getattr(result.layout, name))
    assert any("blank" in note for note in ctx.reporter.snapshot()["notes"])


def test_the_device_is_found_by_its_sysfs_serial_when_udev_made_no_link(ctx_for, host, fakes):
    attach(host, name="vdb", serial="some-other-volume")
    device = attach(host, name="vdd", serial=MOUNT_ID)
    assert volume.prepare(ctx_for(), host).device == str(device)


def test_a_serial_truncated_to_20_bytes_still_matches(ctx_for, host):
    assert len(MOUNT_ID) > 20
    device = attach(host, name="vde", serial=MOUNT_ID[:20])
    assert volume.prepare(ctx_for(), host).device == str(device)
    assert not volume.serial_matches(MOUNT_ID[:19], MOUNT_ID)
    assert not volume.serial_matches("", MOUNT_ID)


def test_a_link_named_after_the_truncated_serial_matches(ctx_for, host):
    device = attach(host, name="vdf", serial=None, link=MOUNT_ID[:20])
    assert volume.prepare(ctx_for(), host).device == str(device)


def test_two_devices_with_the_serial_are_refused_not_guessed(ctx_for, host, fakes):
    attach(host, name="vdb", serial=MOUNT_ID)
    attach(host, name="vdc", serial=MOUNT_ID[:20])
    with pytest.raises(PhaseFailed, match="several devices"):
        volume.prepare(ctx_for(), host)
    assert fakes.calls("mkfs.ext4") == []


def test_a_device_that_never_appears_fails_after_the_deadline_with_backoff(
        ctx_for, host, clock, fakes):
    attach(host, name="vdb", serial="someone-elses-disk")
    with pytest.raises(PhaseFailed, match="not done after 30s") as caught:
        volume.prepare(ctx_for(volume={"device_wait_s": 30}), host)
    assert caught.value.phase == "volume"
    assert sum(clock.sleeps) == pytest.approx(30)
    assert clock.sleeps[:4] == [1, 2, 4, 8]
    assert fakes.calls() == []


def test_a_device_that_appears_late_is_waited_for(ctx_for, host, clock):
    real_sleep = clock.sleep

    def sleep(seconds):
        real_sleep(seconds)
        if len(clock.sleeps) == 3:
            attach(host, name="vdg", serial=MOUNT_ID)

    ctx = ctx_for()
    ctx.sleep = sleep
    assert volume.prepare(ctx, host).device.endswith("vdg")
    assert len(clock.sleeps) == 3


def test_a_volume_with_a_filesystem_is_never_formatted(ctx_for, host, fakes):
    device = attach(host, fs_type="ext4")
    result = volume.prepare(ctx_for(), host)
    assert not result.formatted and result.fs_type == "ext4"
    assert fakes.calls("mkfs.ext4") == [] and fakes.calls("mkfs.xfs") == []
    assert fakes.calls("mount") == [["-t", "ext4", "-o", "noatime", str(device),
                                     result.mount_point]]


def test_a_filesystem_of_another_type_is_mounted_as_it_is_and_noted(ctx_for, host, fakes):
    attach(host, fs_type="xfs")
    ctx = ctx_for()
    result = volume.prepare(ctx, host)
    assert not result.formatted and result.fs_type == "xfs"
    assert fakes.calls("mkfs.ext4") == [] and fakes.calls("mkfs.xfs") == []
    assert fakes.calls("mount")[0][:2] == ["-t", "xfs"]
    assert fstab_lines(host, result.mount_point)[0].endswith(" xfs defaults,noatime,nofail 0 0")
    assert any("xfs, not ext4" in note for note in ctx.reporter.snapshot()["notes"])


@pytest.mark.parametrize("mode, words", [("error", "exit 4"), ("ptable", "exit 0"),
                                          ("ambivalent", "exit 8")])
def test_an_unclear_probe_never_formats_and_fails_the_phase(ctx_for, host, fakes, mode, words):
    attach(host)
    fakes.env["FAKE_BLKID"] = mode
    with pytest.raises(PhaseFailed, match=words) as caught:
        volume.prepare(ctx_for(), host)
    assert "not formatting" in caught.value.reason
    assert fakes.calls("mkfs.ext4") == [] and fakes.calls("mount") == []


def test_preparing_twice_formats_once_mounts_once_and_writes_fstab_once(ctx_for, host, fakes):
    attach(host, link=MOUNT_ID)
    first = volume.prepare(ctx_for(), host)
    second = volume.prepare(ctx_for(), host)
    assert first.formatted and not second.formatted
    assert not first.already_mounted and second.already_mounted
    assert len(fakes.calls("mkfs.ext4")) == 1 and len(fakes.calls("mount")) == 1
    assert len(fstab_lines(host, first.mount_point)) == 1


def test_an_old_fstab_line_for_the_mount_point_is_replaced(ctx_for, host, fakes):
    ctx = ctx_for()
    mount_point = ctx.spec.volume.mount_point
    host.fstab.write_text(host.fstab.read_text()
                          + f"UUID=old-volume {mount_point} ext4 defaults 0 2\n")
    attach(host, fs_type="ext4")
    result = volume.prepare(ctx, host)
    assert fstab_lines(host, mount_point) == [volume.fstab_line(
        volume.Filesystem("ext4", result.uuid), mount_point)]
    assert host.fstab.read_text().startswith("# /etc/fstab\nLABEL=root / ext4 defaults 0 1\n")


def test_something_else_mounted_at_the_mount_point_fails(ctx_for, host, fakes):
    attach(host)
    ctx = ctx_for()
    with host.mounts.open("a") as handle:
        handle.write(f"/dev/sdz9 {ctx.spec.volume.mount_point} ext4 rw 0 0\n")
    with pytest.raises(PhaseFailed, match="already has /dev/sdz9 mounted"):
        volume.prepare(ctx, host)
    assert fakes.calls("mount") == []


def test_mount_points_with_spaces_are_read_back_from_the_mounts_table(tmp_path, host, fakes,
                                                                       clock):
    attach(host)
    spec = make_spec(tmp_path, volume={"mount_point": str(tmp_path / "my cache")})
    ctx = make_context(spec, fakes.env, clock=clock, sleep=clock.sleep)
    volume.prepare(ctx, host)
    assert "\\040" in host.mounts.read_text()
    assert volume.prepare(ctx, host).already_mounted


def test_mkfs_and_mount_failures_fail_the_phase(ctx_for, host, fakes):
    attach(host)
    fakes.env["FAKE_MKFS"] = "fail"
    with pytest.raises(PhaseFailed, match="mkfs failed"):
        volume.prepare(ctx_for(), host)
    fakes.env.update(FAKE_MKFS="ok", FAKE_MOUNT="fail")
    with pytest.raises(PhaseFailed, match="cannot mount"):
        volume.prepare(ctx_for(), host)


def test_real_blkid_and_mkfs_format_a_blank_image_once_and_never_again(ctx_for, host, fakes):
    need(bool(shutil.which("blkid", path="/usr/sbin:/sbin:/usr/bin")
              and shutil.which("mkfs.ext4", path="/usr/sbin:/sbin:/usr/bin")),
         "real blkid and mkfs.ext4 are not installed")
    fakes.env["FAKE_BLKID"] = "real"
    image = attach(host, size=16 * 2**20)
    first = volume.prepare(ctx_for(), host)
    assert first.formatted and first.fs_type == "ext4" and len(first.uuid) == 36
    host.mounts.write_text("")  # as after a reboot: not mounted, filesystem on the volume
    second = volume.prepare(ctx_for(), host)
    assert not second.formatted and second.uuid == first.uuid
    assert len(fakes.calls("mkfs.ext4")) == 1
    assert str(image) in fakes.calls("mkfs.ext4")[0]


@pytest.mark.need(IS_ROOT, "chown to another user needs root")
def test_the_trainer_owns_its_writable_directories_and_data_stays_root(ctx_for, host,
                                                                        trainer_name):
    attach(host)
    result = volume.prepare(ctx_for(paths={"trainer_user": trainer_name}), host)
    uid = pwd.getpwnam(trainer_name).pw_uid
    for name in ("cache", "checkpoints", "reports"):
        assert os.stat(getattr(result.layout, name)).st_uid == uid
    assert os.stat(result.layout.data).st_uid == 0
