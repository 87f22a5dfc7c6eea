"""The instance's SSH host keys, published to the bucket so ``launcher ssh`` can pin them.

Right after hardening, the supervisor puts ``runs/<run-id>/ssh_host_keys.pub`` in the bucket:
one ``<type> <base64>`` line per ``/etc/ssh/ssh_host_*_key.pub`` (comments dropped: they name
the host, and nothing needs them). On Vultr cloud-init generates the keys in its init stage,
long before the supervisor starts after ``cloud-final``; in a Vast container the sshd of the
SSH runtype keeps them in the container's ``/etc/ssh`` and may make them a little after the
onstart began (``launcher.runner.container``). The files are waited for, with backoff, for
at most ``wait_s``.

The object is written with the run's B2 key, which only the instance (and the operator)
holds, so a key read from there was put there by this run's instance, not learnt over the
network it is meant to secure.

Never fatal: no host keys, or a failed upload, is a status note and the run goes on
(``launcher ssh`` then refuses to connect, saying why).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from launcher.runner.context import Context
from launcher.runner.s3 import bucket_url, tool_for

HOST_KEYS_OBJECT = "ssh_host_keys.pub"
HOST_KEY_FILES = "ssh_host_*_key.pub"
KEY_TYPES = ("ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-")
BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
MAX_KEY_FILE_BYTES = 16 << 10


@dataclass(frozen=True)
class HostKeyOptions:
    """Where the host keys are and how long to wait for them (tests point ``ssh_dir`` into
    a temp dir)."""

    ssh_dir: Path = Path("/etc/ssh")
    wait_s: float = 30.0
    first_poll_s: float = 0.5
    max_poll_s: float = 5.0
    upload_timeout_s: float = 120.0


def publish(ctx: Context, options: HostKeyOptions | None = None) -> bool:
    """Upload the host keys; True when they are in the bucket. Never raises."""
    opts = options or HostKeyOptions()
    url = host_keys_url(ctx)
    try:
        lines = wait_for_keys(ctx, opts)
        if not lines:
            ctx.reporter.note(f"ssh: no host keys ({opts.ssh_dir}/{HOST_KEY_FILES}) after "
                              f"{opts.wait_s:g} s: none published, so `launcher ssh` refuses "
                              "this run")
            return False
        _upload(ctx, lines, url, opts)
    except Exception as exc:  # an SSH convenience must never cost the run
        ctx.reporter.note(f"ssh: host keys not published to {url} ({type(exc).__name__}: "
                          f"{exc}), so `launcher ssh` refuses this run")
        return False
    ctx.log(f"ssh: published {len(lines)} host key(s) to {url}")
    return True


def host_keys_url(ctx: Context) -> str:
    return bucket_url(ctx, f"{ctx.spec.run_prefix}/{HOST_KEYS_OBJECT}")


def read_keys(ssh_dir: Path) -> list[str]:
    """``<type> <base64>`` of each well-formed host public key file, sorted by file name;
    links, unreadable and malformed files are left out."""
    lines = []
    for path in sorted(ssh_dir.glob(HOST_KEY_FILES)):
        try:
            if path.is_symlink() or not path.is_file():
                continue
            with open(path, encoding="ascii", errors="replace") as handle:
                parts = handle.read(MAX_KEY_FILE_BYTES).split()
        except OSError:
            continue
        if len(parts) >= 2 and parts[0].startswith(KEY_TYPES) and BASE64.match(parts[1]):
            lines.append(f"{parts[0]} {parts[1]}")
    return lines


def wait_for_keys(ctx: Context, opts: HostKeyOptions) -> list[str]:
    """The host keys once any exist, polling with doubling pauses until ``wait_s``."""
    deadline = ctx.clock() + opts.wait_s
    pause = opts.first_poll_s
    while True:
        lines = read_keys(opts.ssh_dir)
        left = deadline - ctx.clock()
        if lines or left <= 0:
            return lines
        ctx.sleep(min(pause, left))
        pause = min(pause * 2, opts.max_poll_s)


def _upload(ctx: Context, lines: list[str], url: str, opts: HostKeyOptions) -> None:
    tool = tool_for(ctx, timeout=opts.upload_timeout_s, attempts=3)
    with tempfile.TemporaryDirectory(prefix="hostkeys-", dir=ctx.spec.paths.state_dir) as tmp:
        staged = Path(tmp) / HOST_KEYS_OBJECT
        staged.write_text("".join(f"{line}\n" for line in lines), encoding="ascii")
        tool.cp_up(str(staged), url)
