"""Hardening: the first thing the supervisor does, before any secret is used.

1. The secrets file must be a regular file owned by root (``owner_uid``) with mode 0600. A
   looser mode is fixed (and noted: the file may have been readable); a wrong owner is fixed
   when possible, else the run is refused (:class:`PhaseFailed`) — it would be trusting a file
   someone else controls.
2. cloud-init's cached copies of the user data (which carry the secrets) are removed:
   ``user-data.txt``, ``user-data.txt.i`` and the merged ``cloud-config.txt`` under
   ``<cloud_dir>/instance/`` and ``<cloud_dir>/instances/*/``. Vendor data is Vultr's, not ours,
   and is left alone. (``obj.pkl`` is root-only and cloud-init needs it on reboot: kept.)
3. Non-root users may not reach the metadata service (it serves the user data):
   ``iptables -w -I OUTPUT -d 169.254.169.254 -m owner ! --uid-owner 0 -j REJECT``, added once
   (``-C`` first); without iptables, the same rule as an ``nft`` table; with neither, a loud
   note — the run goes on (the trainer is unprivileged and the files above are root-only).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from launcher.runner import tools
from launcher.runner.context import Context
from launcher.runner.status import PhaseFailed

METADATA_IP = "169.254.169.254"
USER_DATA_COPIES = ("user-data.txt", "user-data.txt.i", "cloud-config.txt")
IPTABLES_RULE = ("OUTPUT", "-d", METADATA_IP, "-m", "owner", "!", "--uid-owner", "0",
                 "-j", "REJECT")
NFT_SCRIPT = f"""table inet launcher {{}}
delete table inet launcher
table inet launcher {{
  chain output {{
    type filter hook output priority 0; policy accept;
    ip daddr {METADATA_IP} meta skuid != 0 reject
  }}
}}
"""


@dataclass(frozen=True)
class HardeningOptions:
    """Where to look; tests point these into a temp dir."""

    cloud_dir: Path = Path("/var/lib/cloud")
    owner_uid: int = 0
    tool_timeout_s: float = 30.0


def harden(ctx: Context, options: HardeningOptions | None = None) -> None:
    """Secure the secrets file, remove cloud-init's copies, fence the metadata service."""
    opts = options or HardeningOptions()
    secure_secrets_file(ctx, Path(ctx.spec.paths.secrets_file), opts.owner_uid)
    removed = remove_user_data_copies(opts.cloud_dir)
    ctx.log(f"harden: removed {len(removed)} cached user-data file(s)")
    block_metadata(ctx, opts.tool_timeout_s)


def secure_secrets_file(ctx: Context, path: Path, owner_uid: int) -> None:
    """Make ``path`` mode 0600 owned by ``owner_uid``, or raise PhaseFailed."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise PhaseFailed("harden", f"secrets file {path} is missing") from None
    if not stat.S_ISREG(info.st_mode):
        raise PhaseFailed("harden", f"secrets file {path} is not a regular file")
    if info.st_uid != owner_uid:
        try:
            os.chown(path, owner_uid, -1)
        except OSError as exc:
            raise PhaseFailed("harden", f"secrets file {path} is owned by uid {info.st_uid}, "
                              f"not {owner_uid}, and cannot be given back: {exc.strerror}"
                              ) from None
        ctx.reporter.note(f"harden: secrets file {path} was owned by uid {info.st_uid}; "
                          f"now uid {owner_uid}")
    mode = stat.S_IMODE(info.st_mode)
    if mode != 0o600:
        os.chmod(path, 0o600)
        ctx.reporter.note(f"harden: secrets file {path} had mode {mode:04o}; now 0600 — "
                          "it may have been readable by others")


def remove_user_data_copies(cloud_dir: Path) -> list[Path]:
    """Delete cloud-init's cached user data; the paths removed."""
    dirs = [cloud_dir / "instance", *sorted((cloud_dir / "instances").glob("*"))]
    removed = []
    for directory in dirs:
        for name in USER_DATA_COPIES:
            path = directory / name
            try:
                path.unlink()
            except (FileNotFoundError, NotADirectoryError):
                continue
            removed.append(path)
    return removed


def block_metadata(ctx: Context, timeout: float = 30.0) -> str:
    """Reject non-root traffic to the metadata address; returns how ("iptables", "nft",
    "none")."""
    env = ctx.base_env
    try:
        check = tools.run(["iptables", "-w", "-C", *IPTABLES_RULE], timeout=timeout, env=env,
                          check=False)
        if check.returncode != 0:
            tools.run(["iptables", "-w", "-I", *IPTABLES_RULE], timeout=timeout, env=env)
        ctx.log(f"harden: metadata {METADATA_IP} closed to non-root users (iptables)")
        return "iptables"
    except tools.ToolError as exc:
        ctx.log(f"harden: iptables: {exc}; trying nft")
    try:
        tools.run(["nft", "-f", "-"], timeout=timeout, env=env, input_text=NFT_SCRIPT)
        ctx.log(f"harden: metadata {METADATA_IP} closed to non-root users (nft)")
        return "nft"
    except tools.ToolError as exc:
        ctx.reporter.note(f"harden: WARNING: metadata {METADATA_IP} is NOT closed to non-root "
                          f"users (no working iptables or nft: {exc}); the user data is "
                          "readable from it by any process on this instance")
    return "none"
