"""Hardening on temp roots: the secrets file, cloud-init's copies of the user data, and the
metadata fence through fake iptables / nft on PATH."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from launcher.runner.hardening import (
    IPTABLES_RULE,
    HardeningOptions,
    block_metadata,
    harden,
    remove_user_data_copies,
)
from launcher.runner.status import PhaseFailed

from .conftest import make_context, make_spec, read_status

IS_ROOT = os.geteuid() == 0


def fake_tool(bin_dir: Path, name: str, body: str) -> None:
    """A shell script ``name`` that logs its argv (one line) and stdin, then runs ``body``."""
    bin_dir.mkdir(exist_ok=True)
    log = bin_dir.parent / "calls.log"
    path = bin_dir / name
    path.write_text(f'#!/bin/sh\nPATH=/usr/bin:/bin\necho "{name} $*" >> {log}\n{body}\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def env(tmp_path):
    return {"PATH": str(tmp_path / "bin")}


@pytest.fixture
def ctx(tmp_path, env):
    spec = make_spec(tmp_path)
    secrets_file = Path(spec.paths.secrets_file)
    secrets_file.write_text("VULTR_KEY=x\n")
    secrets_file.chmod(0o600)
    return make_context(spec, env=env)


def test_a_readable_secrets_file_is_fixed_and_noted(ctx, tmp_path):
    path = Path(ctx.spec.paths.secrets_file)
    path.chmod(0o644)
    fake_tool(tmp_path / "bin", "iptables", "exit 0")
    harden(ctx, HardeningOptions(cloud_dir=tmp_path / "cloud", owner_uid=os.geteuid()))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert any("had mode 0644; now 0600" in n for n in read_status(ctx.spec)["notes"])


def test_a_secrets_file_owned_by_someone_else(ctx, tmp_path):
    path = Path(ctx.spec.paths.secrets_file)
    opts = HardeningOptions(cloud_dir=tmp_path / "cloud", owner_uid=os.geteuid())
    fake_tool(tmp_path / "bin", "iptables", "exit 0")
    if IS_ROOT:  # root can take it back
        os.chown(path, 4242, -1)
        harden(ctx, opts)
        assert path.stat().st_uid == 0
        assert any("owned by uid 4242" in n for n in read_status(ctx.spec)["notes"])
    else:  # anyone else cannot: refuse the run
        with pytest.raises(PhaseFailed, match="cannot be given back"):
            harden(ctx, HardeningOptions(cloud_dir=tmp_path / "cloud", owner_uid=0))


def test_a_missing_or_odd_secrets_file_is_refused(ctx, tmp_path):
    path = Path(ctx.spec.paths.secrets_file)
    path.unlink()
    opts = HardeningOptions(cloud_dir=tmp_path / "cloud", owner_uid=os.geteuid())
    with pytest.raises(PhaseFailed, match="missing"):
        harden(ctx, opts)
    path.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(PhaseFailed, match="not a regular file"):
        harden(ctx, opts)


def test_cloud_inits_copies_of_the_user_data_are_removed(tmp_path):
    cloud = tmp_path / "cloud"
    one, two = cloud / "instances" / "i-1", cloud / "instances" / "i-2"
    for directory in (one, two):
        directory.mkdir(parents=True)
        for name in ("user-data.txt", "user-data.txt.i", "cloud-config.txt",
                     "vendor-data.txt", "obj.pkl"):
            (directory / name).write_text("secret")
    (cloud / "instance").symlink_to(one)
    removed = remove_user_data_copies(cloud)
    assert len(removed) == 6
    for directory in (one, two):
        assert sorted(p.name for p in directory.iterdir()) == ["obj.pkl", "vendor-data.txt"]
    assert remove_user_data_copies(cloud) == []
    assert remove_user_data_copies(tmp_path / "no-cloud") == []


def test_iptables_rule_is_added_once(ctx, tmp_path):
    fake_tool(tmp_path / "bin", "iptables",
              f'[ "$2" = "-C" ] && [ -e {tmp_path}/rule ] && exit 0\n'
              f'[ "$2" = "-C" ] && exit 1\ntouch {tmp_path}/rule')
    assert block_metadata(ctx) == "iptables"
    assert block_metadata(ctx) == "iptables"
    rule = " ".join(IPTABLES_RULE)
    assert rule == ("OUTPUT -d 169.254.169.254 -m owner ! --uid-owner 0 -j REJECT")
    assert calls(tmp_path) == [f"iptables -w -C {rule}", f"iptables -w -I {rule}",
                               f"iptables -w -C {rule}"]


def test_without_iptables_nft_is_used(ctx, tmp_path):
    fake_tool(tmp_path / "bin", "nft", f"cat > {tmp_path}/nft.in")
    assert block_metadata(ctx) == "nft"
    assert calls(tmp_path) == ["nft -f -"]
    script = (tmp_path / "nft.in").read_text()
    assert "ip daddr 169.254.169.254 meta skuid != 0 reject" in script
    assert script.index("delete table inet launcher") < script.rindex("table inet launcher {")


def test_a_broken_iptables_falls_back_to_nft(ctx, tmp_path):
    fake_tool(tmp_path / "bin", "iptables", 'echo "no kernel support" >&2; exit 3')
    fake_tool(tmp_path / "bin", "nft", "cat > /dev/null")
    assert block_metadata(ctx) == "nft"


def test_with_neither_it_says_so_loudly_and_goes_on(ctx, tmp_path):
    (tmp_path / "bin").mkdir()
    harden(ctx, HardeningOptions(cloud_dir=tmp_path / "cloud", owner_uid=os.geteuid()))
    notes = read_status(ctx.spec)["notes"]
    assert any("WARNING: metadata 169.254.169.254 is NOT closed" in n for n in notes)
