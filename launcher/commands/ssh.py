"""``launcher ssh RUN [--user root] [--print] [-- ssh args]``: a shell on the run's instance,
its host key pinned from the bucket (see :mod:`launcher.operate.access_ssh`)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from shutil import which

from launcher.commands import SUMMARIES, runcommon
from launcher.commands.runcommon import (
    BUCKET_PURPOSE,
    account_for,
    add_config_dir,
    config_dir,
    run_id,
)
from launcher.config import DEFAULTS_FILE, load_checked
from launcher.errors import ConfigError
from launcher.operate.access import open_bucket
from launcher.operate.access_ssh import (
    identity_options,
    known_hosts_path,
    ssh_argv,
    target_for,
    write_known_hosts,
)

VALUED_FLAGS = ("--user", "--config-dir")
OWN_FLAGS = (*VALUED_FLAGS, "--print")


def _own_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", default="root", help="the login name (default: root)")
    parser.add_argument("--print", action="store_true",
                        help="print the ssh command and the known_hosts file instead of "
                        "running it")
    add_config_dir(parser, BUCKET_PURPOSE)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "ssh", help=SUMMARIES["ssh"],
        description="Log in to the run's instance with ssh. The instance's SSH host keys are "
        "read from the bucket (runs/<id>/ssh_host_keys.pub, which the instance writes at "
        "boot with the run's B2 key) into a private known_hosts file, pinned to the host and "
        "port the instance's SSH answers at (a Vast container: its mapped port, else Vast's "
        "SSH proxy; ssh gets -p), and ssh is told to accept no other key. Without those "
        "keys the command refuses: it never trusts on "
        "first use. The launcher's options come first; what follows them (or --) goes to "
        "ssh: its options, then a remote command.",
        epilog="You log in with the key of access.ssh_public_key, installed at launch; when "
        "launcher.yaml names it and its private half sits next to it (id.pub -> id), ssh "
        "is given that key alone (-i, IdentitiesOnly=yes).")
    parser.add_argument("run", type=run_id, metavar="RUN", help="the run id")
    _own_options(parser)
    parser.add_argument("ssh_args", nargs=argparse.REMAINDER, metavar="-- SSH_ARGS",
                        help="passed to ssh after the destination")
    parser.set_defaults(handler=run)


def split_args(args: argparse.Namespace) -> tuple[str, ...]:
    """The arguments for ssh. argparse hands over everything after RUN as one remainder
    (dropping a ``--`` right after RUN): the launcher's own options at its start are parsed
    into ``args``; from the first other argument (or after ``--``) on, it is ssh's."""
    rest = list(args.ssh_args)
    own: list[str] = []
    while rest and rest[0].split("=", 1)[0] in OWN_FLAGS:
        flag = rest.pop(0)
        own.append(flag)
        if flag in VALUED_FLAGS and rest:
            own.append(rest.pop(0))
    if rest and rest[0] == "--":
        rest.pop(0)
    parser = argparse.ArgumentParser(prog="launcher ssh RUN", add_help=False)
    _own_options(parser)
    parser.parse_args(own, namespace=args)
    return tuple(rest)


def run(args: argparse.Namespace) -> int:
    extra = split_args(args)
    account = account_for(args)
    bucket = open_bucket(account, config_dir(args))
    with runcommon.open_provider(account, runcommon.provider_name(args)) as provider:
        target = target_for(provider, bucket, args.run)
    known = write_known_hosts(known_hosts_path(args.run, os.environ), target)
    argv = ssh_argv(_ssh_binary(args.print), args.user, target, known,
                    _identity(config_dir(args)), extra)
    if args.print:
        print(f"known_hosts: {known}")
        print(shlex.join(argv))
        return 0
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)  # noqa: S606 - argv list: the resolved ssh and checked values
    return 1  # not reached: exec replaced this process


def _ssh_binary(printing: bool) -> str:
    found = which("ssh")
    if found:
        return found
    if printing:
        return "ssh"
    raise ConfigError("ssh is not installed (no `ssh` on PATH): install the OpenSSH client")


def _identity(directory: Path) -> tuple[str, ...]:
    """The configured key's private half, when ``launcher.yaml`` names one and it exists."""
    path = directory / DEFAULTS_FILE
    if not path.is_file():
        return ()
    public = (load_checked(path, "launcher.schema.json").get("access") or {}).get(
        "ssh_public_key")
    return identity_options(str(public)) if public else ()
