"""``launcher ssh``: the host key comes from the bucket into a private known_hosts file, ssh is
told to accept nothing else, and without those keys nothing is attempted."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from runner.conftest import put
from support.keys import ALL_FAKE_KEYS
from support.sshkeys import ed25519_public

from launcher.cli import main
from launcher.commands import ssh as ssh_command
from launcher.sshkeys import PublicKey
from runs.conftest import RUN, make_run

HOST_ED25519 = PublicKey.parse(ed25519_public("instance-host-key"))
HOST_ECDSA_LINE = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY="
FAKE_SSH = """#!{python}
import json, os, sys
known = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("UserKnownHostsFile="))
record = {{"argv": sys.argv, "known_hosts": open(known).read(),
          "mode": os.stat(known).st_mode & 0o777, "pid": os.getpid()}}
with open(os.environ["FAKE_SSH_RECORD"], "w") as out:
    json.dump(record, out)
"""


@pytest.fixture
def ssh_env(cli_env, monkeypatch, tmp_path):
    """The CLI as in the other run commands, a cache of its own, and ``os.execv`` that
    fails the test: refusals must never reach ssh."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def no_exec(path, argv):
        pytest.fail(f"ssh was started: {argv}")

    monkeypatch.setattr(ssh_command.os, "execv", no_exec)
    return cli_env


def publish_keys(s3_server, bucket, tmp_path, text: str) -> None:
    put(s3_server, bucket, f"runs/{RUN}/ssh_host_keys.pub", text.encode(), tmp_path)


def the_address(emulator) -> str:
    return next(iter(emulator.state.instances.values())).main_ip


def test_print_pins_the_published_keys_for_the_instance_address(
        ssh_env, provider, s3_server, bucket, tmp_path, capsys):
    make_run(provider, RUN)
    publish_keys(s3_server, bucket, tmp_path, f"{HOST_ECDSA_LINE}\n{HOST_ED25519.line}\n")
    assert main(["ssh", RUN, "--print", "--user", "ubuntu", "--", "-L", "6006:lo:6006"]) == 0
    out = capsys.readouterr().out.splitlines()
    known = tmp_path / "cache/launcher/known_hosts" / RUN
    address = the_address(ssh_env)
    assert out[0] == f"known_hosts: {known}"
    assert known.read_text() == f"{address} {HOST_ECDSA_LINE}\n{address} {HOST_ED25519.line}\n"
    assert stat.S_IMODE(known.stat().st_mode) == 0o600
    assert stat.S_IMODE(known.parent.stat().st_mode) == 0o700
    assert out[1].split()[1:] == [
        "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}",
        "-o", "GlobalKnownHostsFile=/dev/null", "-o", "UpdateHostKeys=no",
        f"ubuntu@{address}", "-L", "6006:lo:6006"]


def test_the_shell_is_ssh_itself_with_the_pinned_file(cli_env, provider, s3_server, bucket,
                                                      tmp_path):
    make_run(provider, RUN)
    publish_keys(s3_server, bucket, tmp_path, HOST_ED25519.line + " root@guest\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(FAKE_SSH.format(python=sys.executable))
    (bin_dir / "ssh").chmod(0o755)
    record = tmp_path / "ssh.json"
    env = {**{k: os.environ[k] for k in ("VULTR_API_URL", "VULTR_KEY", "B2_BUCKET",
                                         "B2_S3_ENDPOINT", "B2_APPLICATION_KEY_ID",
                                         "B2_APPLICATION_KEY")},
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path),
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "FAKE_SSH_RECORD": str(record)}
    done = subprocess.run([sys.executable, "-m", "launcher", "ssh", RUN, "--", "nvidia-smi"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(record.read_text())
    address = the_address(cli_env)
    assert seen["argv"][0] == str(bin_dir / "ssh")
    assert seen["argv"][-2:] == [f"root@{address}", "nvidia-smi"]
    assert "StrictHostKeyChecking=yes" in seen["argv"]
    assert seen["known_hosts"] == f"{address} {HOST_ED25519.line}\n"  # no comment kept
    assert seen["mode"] == 0o600
    assert not any(key in done.stdout + done.stderr for key in ALL_FAKE_KEYS)


def test_a_run_without_an_instance_is_refused(ssh_env, capsys):
    assert main(["ssh", RUN]) == 1
    err = capsys.readouterr().err
    assert f"run {RUN} has no instance" in err and f"launcher logs {RUN}" in err


def test_an_instance_without_an_address_is_refused(ssh_env, provider, capsys):
    made = make_run(provider, RUN)
    ssh_env.state.force_instance(made.instance_id, main_ip="0.0.0.0")
    assert main(["ssh", RUN]) == 1
    assert "has no address yet" in capsys.readouterr().err


def test_without_published_host_keys_nothing_is_trusted(ssh_env, provider, tmp_path, capsys):
    make_run(provider, RUN)
    assert main(["ssh", RUN, "--print"]) == 1
    err = capsys.readouterr().err
    assert "SSH host keys are not in the bucket" in err and "refusing to connect" in err
    assert "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub" in err  # how to check by hand
    assert not (tmp_path / "cache/launcher/known_hosts" / RUN).exists()


def test_keys_older_than_the_instance_are_refused(ssh_env, provider, s3_server, bucket,
                                                 tmp_path, capsys):
    made = make_run(provider, RUN)
    publish_keys(s3_server, bucket, tmp_path, HOST_ED25519.line + "\n")
    later = (datetime.now(timezone.utc) + timedelta(hours=1)).replace(microsecond=0)
    ssh_env.state.force_instance(made.instance_id, date_created=later.isoformat())
    assert main(["ssh", RUN]) == 1
    assert "predates run" in capsys.readouterr().err


def test_a_file_that_holds_no_key_is_refused(ssh_env, provider, s3_server, bucket, tmp_path,
                                             capsys):
    make_run(provider, RUN)
    publish_keys(s3_server, bucket, tmp_path, "ssh-ed25519 not-base64!\n")
    assert main(["ssh", RUN]) == 1
    assert "holds no usable host key (line 1:" in capsys.readouterr().err


def test_a_bucket_that_cannot_be_read_is_an_error_never_a_fallback(
        ssh_env, provider, s3_server, bucket, tmp_path, monkeypatch, capsys):
    make_run(provider, RUN)
    publish_keys(s3_server, bucket, tmp_path, HOST_ED25519.line + "\n")
    monkeypatch.setenv("B2_APPLICATION_KEY", "wrong-secret-0001")  # refused by the bucket
    assert main(["ssh", RUN]) == 3
    err = capsys.readouterr().err
    assert "cannot read the run's SSH host keys" in err and "refusing to connect" in err
    assert "wrong-secret-0001" not in err and not any(k in err for k in ALL_FAKE_KEYS)
    assert not (tmp_path / "cache/launcher/known_hosts" / RUN).exists()


def test_a_login_name_that_could_be_an_option_is_refused(ssh_env, provider, s3_server, bucket,
                                                         tmp_path, capsys):
    make_run(provider, RUN)
    publish_keys(s3_server, bucket, tmp_path, HOST_ED25519.line + "\n")
    assert main(["ssh", RUN, "--user=-oProxyCommand=x"]) == 1
    assert "expected a login name" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "user", "printing", "extra"), [
    ([RUN], "root", False, ()),
    ([RUN, "--", "-v"], "root", False, ("-v",)),
    ([RUN, "--print", "--user", "u", "--", "--print"], "u", True, ("--print",)),
    ([RUN, "--user=u", "-L", "1:x:2", "--print"], "u", False, ("-L", "1:x:2", "--print")),
    (["--print", RUN, "nvidia-smi"], "root", True, ("nvidia-smi",)),
])
def test_the_launchers_options_come_first_then_sshs(argv, user, printing, extra):
    from launcher.cli import build_parser

    args = build_parser().parse_args(["ssh", *argv])
    assert ssh_command.split_args(args) == extra
    assert (args.user, args.print) == (user, printing)


def test_the_configured_key_is_offered_alone(tmp_path):
    from launcher.operate.access_ssh import identity_options

    public = tmp_path / "id_ed25519.pub"
    public.write_text(ed25519_public("me") + "\n")
    assert identity_options(str(public)) == ()  # no private half next to it
    Path(str(public)[:-4]).write_text("private\n")
    assert identity_options(str(public)) == ("-i", str(public)[:-4], "-o", "IdentitiesOnly=yes")
    assert identity_options(str(tmp_path / "id_ed25519")) == ()


def test_an_instance_still_booting_is_refused(ssh_env, provider, capsys):
    made = make_run(provider, RUN)
    ssh_env.state.force_instance(made.instance_id, created_t=float("inf"))  # never active
    assert main(["ssh", RUN]) == 1
    err = capsys.readouterr().err
    assert "is not running (status=pending" in err and "try again shortly" in err


def test_two_instances_for_one_run_are_refused(ssh_env, provider, capsys):
    make_run(provider, RUN)
    make_run(provider, RUN, volume=False)
    assert main(["ssh", RUN]) == 1
    assert f"run {RUN} has 2 instances" in capsys.readouterr().err


def test_an_empty_key_file_is_refused(ssh_env, provider, s3_server, bucket, tmp_path, capsys):
    make_run(provider, RUN)
    publish_keys(s3_server, bucket, tmp_path, "# no keys here\n")
    assert main(["ssh", RUN]) == 1
    assert "ssh_host_keys.pub is empty; refusing to connect" in capsys.readouterr().err


def test_without_ssh_installed_it_says_so(ssh_env, provider, s3_server, bucket, tmp_path,
                                          monkeypatch, capsys):
    make_run(provider, RUN)
    publish_keys(s3_server, bucket, tmp_path, HOST_ED25519.line + "\n")
    monkeypatch.setattr(ssh_command, "which", lambda name: None)
    assert main(["ssh", RUN]) == 2
    assert "ssh is not installed" in capsys.readouterr().err
    assert main(["ssh", RUN, "--print"]) == 0  # the command can still be shown
    assert capsys.readouterr().out.splitlines()[1].startswith("ssh -o StrictHostKeyChecking")


def test_the_key_of_launcher_yaml_is_used_when_its_private_half_is_there(
        ssh_env, provider, s3_server, bucket, tmp_path, capsys):
    make_run(provider, RUN)
    publish_keys(s3_server, bucket, tmp_path, HOST_ED25519.line + "\n")
    configs = tmp_path / "configs"
    configs.mkdir()
    public = tmp_path / "id_ed25519.pub"
    public.write_text(ed25519_public("me") + "\n")
    (tmp_path / "id_ed25519").write_text("private\n")
    defaults = (Path(__file__).resolve().parents[2] / "configs/launcher.yaml").read_text()
    (configs / "launcher.yaml").write_text(defaults + f"access: {{ssh_public_key: '{public}'}}\n")
    assert main(["ssh", RUN, "--print", "--config-dir", str(configs)]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert f"-i {tmp_path / 'id_ed25519'} -o IdentitiesOnly=yes root@" in line


def _instance(host: str, port: int = 22, address: str = "192.0.2.7"):
    from launcher.providers import InstanceRef

    return InstanceRef("i-1", "l", "r", "p", (), "up", True, True, address, ssh_host=host,
                       ssh_port=port)


@pytest.mark.parametrize(("host", "port", "expected"), [
    ("", 22, ("192.0.2.7", 22)),
    ("SSH2281.vast.ai", 10882, ("ssh2281.vast.ai", 10882)),
    ("2001:db8:0::1", 2222, ("2001:db8::1", 2222)),
    ("198.51.100.10", 20000, ("198.51.100.10", 20000)),
])
def test_the_ssh_endpoint_is_an_address_or_a_strict_host_name(host, port, expected):
    from launcher.operate.access_ssh import ssh_endpoint

    assert ssh_endpoint(_instance(host, port)) == expected


@pytest.mark.parametrize(("host", "port", "why"), [
    ("-oProxyCommand=x", 22, "neither an IP address nor a host name"),
    ("ssh5.vast.ai -p 1", 22, "neither an IP address nor a host name"),
    ("ssh5..vast.ai", 22, "neither an IP address nor a host name"),
    ("ssh_5.vast.ai", 22, "neither an IP address nor a host name"),
    ("-ssh5.vast.ai", 22, "neither an IP address nor a host name"),
    ("1.2.3.999", 22, "neither an IP address nor a host name"),
    ("a" * 64 + ".vast.ai", 22, "neither an IP address nor a host name"),
    ("ssh5.vast.ai", 0, "is not a TCP port"),
    ("ssh5.vast.ai", 65536, "is not a TCP port"),
])
def test_an_ssh_endpoint_that_could_be_anything_else_is_refused(host, port, why):
    from launcher.operate.access_ssh import SshRefused, ssh_endpoint

    with pytest.raises(SshRefused, match=why):
        ssh_endpoint(_instance(host, port))


def test_off_port_22_ssh_gets_the_port_and_a_name_is_pinned_as_a_name(tmp_path):
    from launcher.operate.access_ssh import SshTarget, ssh_argv

    named = SshTarget(RUN, "i-1", "ssh2281.vast.ai", (HOST_ED25519,), 10882)
    argv = ssh_argv("ssh", "root", named, tmp_path / "known")
    assert argv[-5:] == ("-o", "CheckHostIP=no", "-p", "10882", "root@ssh2281.vast.ai")
    by_address = ssh_argv("ssh", "root", SshTarget(RUN, "i-1", "192.0.2.7", (HOST_ED25519,)),
                          tmp_path / "known")
    assert "-p" not in by_address and "CheckHostIP=no" not in by_address
