"""OpenSSH public keys: parsed and checked, fingerprinted as ssh-keygen does, named safely."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from support.sshkeys import ed25519_public

from launcher.sshkeys import NotAPublicKey, PublicKey, body_of, known_hosts, parse_many


@pytest.mark.need(shutil.which("ssh-keygen") is not None, "needs ssh-keygen")
def test_the_fingerprint_is_ssh_keygens(tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "me@test", "-f",
                    str(tmp_path / "id")], check=True, stdin=subprocess.DEVNULL)
    text = (tmp_path / "id.pub").read_text()
    shown = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "id.pub")], check=True,
                           capture_output=True, text=True).stdout.split()[1]
    key = PublicKey.parse(text)
    assert key.fingerprint == shown and key.comment == "me@test"


def test_the_account_name_is_short_and_safe():
    names = {PublicKey.parse(ed25519_public(f"k{n}")).account_name for n in range(200)}
    assert len(names) == 200
    assert all(re.fullmatch(r"launcher-[A-Za-z0-9_-]{16}", name) for name in names)


@pytest.mark.parametrize(("text", "why"), [
    ("", "expected '<type> <base64>"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----", "expected '<type> <base64>"),
    ("ssh-ed25519 AAAAC3Nza", "not base64"),
    ("ssh-rsa " + ed25519_public("x").split()[1], "does not hold a ssh-rsa key"),
    ("ssh-ed25519 AAAA", "does not hold"),
])
def test_what_is_not_a_public_key_says_why(text, why):
    with pytest.raises(NotAPublicKey, match=why):
        PublicKey.parse(text)


def test_keys_compare_without_their_comments():
    key = PublicKey.parse(ed25519_public("same", comment="a@b"))
    other = PublicKey.parse(ed25519_public("same", comment="c@d"))
    assert key.body == other.body and body_of(ed25519_public("same", "x")) == key.body


def test_a_key_file_and_the_known_hosts_lines():
    one, two = ed25519_public("one", "h"), ed25519_public("two", "h")
    keys = parse_many(f"# host keys\n\n{one}\n{two}\n")
    assert known_hosts("192.0.2.7", keys) == (f"192.0.2.7 {keys[0].line}\n"
                                              f"192.0.2.7 {keys[1].line}\n")
    with pytest.raises(NotAPublicKey, match="line 2: "):
        parse_many(f"{one}\nnonsense here\n")
    with pytest.raises(ValueError, match="not a host address"):
        known_hosts("evil host\n* ssh-ed25519", keys)


def test_off_port_22_the_host_is_bracketed_with_its_port():
    keys = parse_many(ed25519_public("one", "h"))
    assert known_hosts("ssh2281.vast.ai", keys, 10882) == \
        f"[ssh2281.vast.ai]:10882 {keys[0].line}\n"
    assert known_hosts("192.0.2.7", keys, 22) == f"192.0.2.7 {keys[0].line}\n"
    for port in (0, 65536, True):
        with pytest.raises(ValueError, match="not a TCP port"):
            known_hosts("192.0.2.7", keys, port)
    with pytest.raises(ValueError, match="not a host address"):
        known_hosts("[192.0.2.7]:22", keys)


@pytest.mark.need(shutil.which("ssh-keygen") is not None, "needs ssh-keygen")
def test_ssh_keygen_reads_the_lines_for_that_host_and_port_alone(tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "h")],
                   check=True, stdin=subprocess.DEVNULL, timeout=30)
    key = PublicKey.parse((tmp_path / "h.pub").read_text())
    known = tmp_path / "known_hosts"
    known.write_text(known_hosts("127.0.0.1", (key,), 2222))

    def find(host: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ssh-keygen", "-F", host, "-f", str(known)], check=False,
                              capture_output=True, text=True, timeout=30)

    found = find("[127.0.0.1]:2222")
    assert found.returncode == 0 and f"[127.0.0.1]:2222 {key.line}" in found.stdout, found
    assert find("127.0.0.1").returncode == 1 and find("[127.0.0.1]:2223").returncode == 1
