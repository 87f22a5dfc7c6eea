"""A sandbox machine gets an SSH host key at boot, as cloud-init gives a real one."""

from __future__ import annotations

import shutil

import pytest

from launcher.sandbox import machine
from launcher.sshkeys import PublicKey


@pytest.mark.need(shutil.which("ssh-keygen") is not None, "needs ssh-keygen")
def test_a_fresh_key_pair_is_made_with_ssh_keygen(tmp_path):
    assert machine.write_host_key(tmp_path, "i-1") == "ssh-keygen"
    public = (tmp_path / "etc/ssh/ssh_host_ed25519_key.pub").read_text()
    assert PublicKey.parse(public).kind == "ssh-ed25519" and public.strip().endswith("root@i-1")
    assert (tmp_path / "etc/ssh/ssh_host_ed25519_key").stat().st_mode & 0o077 == 0
    first = public
    machine.write_host_key(tmp_path, "i-1")  # an old key is replaced, never prompted about
    assert (tmp_path / "etc/ssh/ssh_host_ed25519_key.pub").read_text() != first


def test_without_ssh_keygen_a_fixed_public_key_stands_in(tmp_path, monkeypatch):
    monkeypatch.setattr(machine.shutil, "which", lambda name: None)
    assert machine.write_host_key(tmp_path, "i-1") == "fixed"
    public = (tmp_path / "etc/ssh/ssh_host_ed25519_key.pub").read_text()
    assert PublicKey.parse(public).line == machine.FIXED_HOST_KEY.rsplit(" ", 1)[0]
