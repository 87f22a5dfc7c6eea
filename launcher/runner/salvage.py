"""Node 0 salvages a reaped node's volume whose upload was not verified.

When node 0 reaps node ``j`` (:mod:`launcher.runner.reap`) and ``j``'s instance is gone but
its status does not show a verified upload, ``j``'s volume may hold the only copy of its
outputs. Rather than keep it (billing, and someone must recover it by hand), node 0:

1. attaches it to itself live (``POST /blocks/{id}/attach`` with ``instance_id`` and ``live:
   true``, Vultr OpenAPI; a lock, "Server is currently locked", is retried to the deadline by
   the client's retry rules) and reads the volume back until ``attached_to_instance`` names
   this instance (attach is asynchronous: vultr/vultr-csi ``driver/controller.go`` reads it
   back the same way); then waits for the device whose serial is the volume's ``mount_id``
   (:func:`launcher.runner.volume.find_device`);
2. probes it (``blkid -p``); a volume with no filesystem at all was never written: nothing
   to salvage, and it is deleted. Nothing here ever formats;
3. mounts it READ-ONLY (``ro,nosuid,nodev,noexec``) at ``<mount_point>-salvage-node<j>``.
   ext4 and xfs replay their journal on a read-only mount (the kernel's ext4 and xfs
   documentation), which completes what node ``j`` had committed; nothing else is written;
4. uploads what node ``j``'s upload phase would have sent from its volume: each
   ``spec.upload_dirs`` folder, to ``<run_root>/nodes/<j>/<folder>/`` (the same keys), and
   verifies every file's key and size as :mod:`launcher.runner.upload` does; then
   ``nodes/<j>/salvage.json`` (:class:`SalvageRecord`: by whom, when, what, verified);
5. unmounts, and deletes the volume (detach live, wait, delete) only when both verified.
   Anything that fails keeps the volume, detached when it could be, and returns the
   left-behind line naming it with the command that deletes it.

Every step is bounded by one deadline: at most ``max_s``, and ``margin_s`` before the run's
deadline (the watchdog's); with less than ``min_s`` left nothing is tried and the volume is
kept. Never raises. Standard library only.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import tempfile
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from launcher.runner import tools, volume
from launcher.runner.context import Context
from launcher.runner.data import is_safe_relative
from launcher.runner.retry import says
from launcher.runner.s3 import S3Tool, bucket_url, tool_for
from launcher.runner.spec import scrub
from launcher.runner.status import PhaseFailed, utc_now
from launcher.runner.supervisor import TEST_HOST_ENV
from launcher.runner.upload import regular_files, verify
from launcher.runner.vultr import ApiError, SelfApi, remove_block

MAX_S = 3600.0
MARGIN_S = 600.0
MIN_S = 120.0
MOUNT_OPTIONS = "ro,nosuid,nodev,noexec"
RECORD = "salvage.json"
RESERVED = ("logs", "status.json", "manifest.json", RECORD)
ALREADY_ATTACHED = ("already attached",)
SHOW = 5


@dataclass(frozen=True)
class SalvageOptions:
    """Where the host's devices and mounts are, and the time limits. ``settle_s`` bounds
    each wait for Vultr or the kernel (attach shown, device present, detach shown)."""

    host: volume.HostPaths = volume.HOST
    settle_s: float = 180.0
    poll_s: float = 2.0
    max_s: float = MAX_S
    margin_s: float = MARGIN_S
    min_s: float = MIN_S
    umount_timeout_s: float = 60.0


def options_for(ctx: Context, *, settle_s: float, poll_s: float) -> SalvageOptions:
    """The options a teardown uses: the real host, or — only where the supervisor honours a
    test host (``LAUNCHER_RUNNER_TEST_HOST_ROOT`` with ``health.cpu_only``) — that root's
    ``dev``, ``sys/block`` and ``proc/mounts``, as its volume phase used them."""
    root = ctx.base_env.get(TEST_HOST_ENV, "")
    host = volume.HOST
    if root and os.path.isabs(root) and Path(root).is_dir() and ctx.spec.health.cpu_only:
        base = Path(root)
        host = volume.HostPaths(by_id=base / "dev/disk/by-id", sys_block=base / "sys/block",
                                dev=base / "dev", mounts=base / "proc/mounts",
                                fstab=base / "etc/fstab", block_only=False)
    return SalvageOptions(host=host, settle_s=settle_s, poll_s=poll_s)


@dataclass(frozen=True)
class Target:
    """The volume to salvage, as ``GET /blocks`` showed it."""

    node: int
    block_id: str
    mount_id: str
    attached_to: str

    @classmethod
    def of(cls, node: int, block: dict) -> Target:
        return cls(node, str(block.get("id") or ""), str(block.get("mount_id") or ""),
                   str(block.get("attached_to_instance") or ""))


@dataclass(frozen=True)
class SalvageRecord:
    """``nodes/<j>/salvage.json``: node ``node``'s volume, salvaged by ``by_node`` (instance
    ``by_instance``) at ``at``; ``folders`` uploaded, ``objects``/``bytes`` expected, and
    whether every one of them was found in the bucket with its size."""

    node: int
    volume: str
    by_node: int
    by_instance: str
    at: str
    fs_type: str
    folders: tuple[str, ...]
    objects: int
    bytes: int
    verified: bool
    problems: tuple[str, ...] = ()


class SalvageFailed(RuntimeError):
    """A step failed; the message is one line saying which and why."""


EXPECTED = (SalvageFailed, ApiError, TimeoutError, PhaseFailed, tools.ToolError, OSError)


def salvage(ctx: Context, api: SelfApi, own_id: str, node: int, block: dict, *,
            curl: Callable[[str], str], options: SalvageOptions) -> str:
    """Salvage node ``node``'s ``block`` (see the module docstring); the left-behind line,
    or "" when the volume is gone. Never raises."""
    target = Target.of(node, block)
    keep = (f"volume {target.block_id} of node {node} kept: its upload was not verified and "
            f"it was not salvaged")
    fix = f"recover its data, then delete it: {curl(f'/blocks/{target.block_id}')}"
    left = ctx.seconds_left() - options.margin_s
    if min(options.max_s, left) < options.min_s:
        ctx.log(f"salvage: no time to salvage volume {target.block_id} of node {node}")
        return (f"{keep} (no time: {ctx.seconds_left():.0f}s were left before the run's "
                f"deadline) — {fix}")
    ctx.reporter.note(f"salvage: node {node}'s upload was not verified: salvaging its volume "
                      f"{target.block_id}")
    job = _Salvage(ctx, api, own_id, target, options, ctx.clock() + min(options.max_s, left))
    try:
        job.run()
        return ""
    except Exception as exc:  # any failure, a bug included, keeps the volume
        why = scrub(str(exc) if isinstance(exc, EXPECTED) else f"{type(exc).__name__}: {exc}",
                    ctx.secrets)
        ctx.log(f"salvage: volume {target.block_id} of node {node}: {why}")
        job.release()
        return f"{keep} ({why}) — {fix}"


@dataclass
class _Salvage:
    ctx: Context
    api: SelfApi
    own_id: str
    target: Target
    options: SalvageOptions
    deadline: float
    mounted: bool = False

    @property
    def point(self) -> Path:
        return Path(f"{self.ctx.spec.volume.mount_point.rstrip('/')}-salvage-node"
                    f"{self.target.node}")

    def left(self, cap: float | None = None) -> float:
        """Seconds to the deadline (at most ``cap``); SalvageFailed when none are left."""
        left = self.deadline - self.ctx.clock()
        if left <= 0:
            raise SalvageFailed("out of time before the salvage's deadline")
        return min(left, cap) if cap is not None else left

    def bounded(self) -> SelfApi:
        """The API client, its retries cut to what is left of the deadline."""
        api = copy.copy(self.api)
        api.policy = replace(api.policy, deadline_s=min(api.policy.deadline_s, self.left()))
        return api

    def run(self) -> None:
        self.attach()
        device = self.wait_device()
        found = volume.probe(self.ctx, device, self.options.host)
        if not found.fs_type:
            self.ctx.reporter.note(f"salvage: volume {self.target.block_id} of node "
                                   f"{self.target.node} holds no filesystem: it was never "
                                   f"written, so there is nothing to salvage; deleting it")
            self.remove()
            return
        self.mount(device, found.fs_type)
        try:
            record = self.upload(found.fs_type)
        finally:
            unmounted = self.unmount()
        if not unmounted:
            raise SalvageFailed(f"{self.point} could not be unmounted")
        if not record.verified:
            raise SalvageFailed("the salvage's upload was not verified: "
                                + "; ".join(record.problems[:SHOW]))
        self.remove()
        self.ctx.reporter.note(f"salvage: node {self.target.node}'s volume: {record.objects} "
                               f"objects, {record.bytes} bytes uploaded and verified; volume "
                               f"{self.target.block_id} deleted")

    # -- the volume's attachment ------------------------------------------------------------

    def attach(self) -> None:
        """Attach to this instance live; return once Vultr shows it attached here."""
        block = self.target.block_id
        if self.target.attached_to and self.target.attached_to != self.own_id:
            # Its instance is deleted; Vultr detaches on delete, but has it shown that yet?
            self.bounded().detach_block(block, live=True)
            self.wait_attached("")
        if self.target.attached_to != self.own_id:
            try:
                self.bounded().request("POST", f"/blocks/{_seg(block)}/attach",
                                       {"instance_id": self.own_id, "live": True})
            except ApiError as exc:
                # No answer, a 5xx, or "already attached": the attach may have been done (by
                # this call or an earlier teardown); the read-back below decides.
                if 400 <= exc.status < 500 and not says(str(exc), ALREADY_ATTACHED):
                    raise
                self.ctx.log(f"salvage: attach of volume {block}: {exc}; reading it back")
        self.wait_attached(self.own_id)
        self.ctx.log(f"salvage: volume {block} attached to this instance ({self.own_id})")

    def wait_attached(self, instance: str) -> None:
        block = self.target.block_id
        api = self.bounded()
        tools.retry_until(
            lambda: str(api.get_block(block).get("attached_to_instance") or "") == instance,
            deadline_s=self.left(self.options.settle_s),
            what=f"volume {block} shown {'attached to ' + instance if instance else 'detached'}",
            first_delay=self.options.poll_s / 4, max_delay=self.options.poll_s,
            clock=self.ctx.clock, sleep=self.ctx.sleep)

    def wait_device(self) -> str:
        if not self.target.mount_id:
            raise SalvageFailed(f"volume {self.target.block_id} shows no mount_id")
        found: list[str] = []

        def look() -> bool:
            device = volume.find_device(self.target.mount_id, self.options.host)
            found.append(device)
            return bool(device)

        tools.retry_until(look, deadline_s=self.left(self.options.settle_s),
                          what=f"the device of serial {self.target.mount_id}",
                          first_delay=self.options.poll_s / 4, max_delay=self.options.poll_s,
                          clock=self.ctx.clock, sleep=self.ctx.sleep)
        self.ctx.log(f"salvage: volume {self.target.block_id} is {found[-1]}")
        return found[-1]

    def remove(self) -> None:
        """Detach live, wait until shown detached, delete (gone already counts)."""
        remove_block(self.bounded(), self.target.block_id,
                     wait_s=self.left(self.options.settle_s), poll_s=self.options.poll_s)
        self.ctx.log(f"salvage: volume {self.target.block_id} of node {self.target.node} "
                     f"deleted")

    def release(self) -> None:
        """After a failure: unmount, then detach (best effort, bounded); never raises."""
        try:
            if self.mounted and not self.unmount():
                return  # never detach a disk that is still mounted
            api = copy.copy(self.api)
            api.policy = replace(api.policy, deadline_s=min(api.policy.deadline_s,
                                                            self.options.settle_s))
            api.detach_block(self.target.block_id, live=True)
            self.ctx.log(f"salvage: volume {self.target.block_id} detached")
        except Exception as exc:  # the line naming the volume matters more than this
            self.ctx.log(f"salvage: volume {self.target.block_id} not detached: {exc}")

    # -- the filesystem ---------------------------------------------------------------------

    def mount(self, device: str, fs_type: str) -> None:
        point = str(self.point)
        Path(point).mkdir(parents=True, exist_ok=True)
        if volume.is_mounted(self.ctx, device, point, self.options.host):
            self.mounted = True
            return
        tools.run(["mount", "-t", fs_type, "-o", MOUNT_OPTIONS, device, point],
                  timeout=self.left(volume.MOUNT_TIMEOUT), env=self.ctx.base_env)
        self.mounted = True
        self.ctx.log(f"salvage: {device} mounted read-only at {point}")

    def unmount(self) -> bool:
        """``umount``, then ``umount -l``; True once it is not mounted (the mounts table no
        longer lists the mount point counts too)."""
        point = str(self.point)
        for argv in (["umount", point], ["umount", "-l", point]):
            try:
                tools.run(argv, timeout=self.options.umount_timeout_s, env=self.ctx.base_env)
                break
            except tools.ToolError as exc:
                self.ctx.log(f"salvage: {' '.join(argv)}: {exc}")
        else:
            target = os.path.realpath(point)
            with contextlib.suppress(OSError):
                if any(os.path.realpath(where) == target
                       for _, where in volume.read_mounts(self.options.host)):
                    return False
        self.mounted = False
        with contextlib.suppress(OSError):
            Path(point).rmdir()
        return True

    # -- the bucket -------------------------------------------------------------------------

    def upload(self, fs_type: str) -> SalvageRecord:
        """Upload and verify the folders, then ``salvage.json``; the record."""
        prefix = f"{self.ctx.spec.run_root}/nodes/{self.target.node}"
        left = self.left()
        tool = tool_for(self.ctx, timeout=left, attempts=3, deadline_s=left)
        problems: list[str] = []
        folders, expected = self.send_folders(tool, prefix, problems)
        problems += verify(tool, bucket_url(self.ctx, f"{prefix}/*"), expected,
                           sleep=self.ctx.sleep)
        problems = [scrub(p, self.ctx.secrets) for p in problems]
        cluster = self.ctx.spec.cluster
        record = SalvageRecord(self.target.node, self.target.block_id,
                               cluster.node_index if cluster else 0, self.own_id, utc_now(),
                               fs_type, tuple(folders), len(expected), sum(expected.values()),
                               not problems, tuple(problems))
        sent = self.send_record(tool, f"{prefix}/{RECORD}", record)
        self.ctx.log(f"salvage: {record.objects} objects, {record.bytes} bytes to "
                     f"{bucket_url(self.ctx, prefix)}/: "
                     + ("verified" if record.verified else "NOT verified: "
                        + "; ".join(problems[:SHOW])))
        return record if sent else replace(record, verified=False,
                                           problems=(*problems, f"{RECORD} not uploaded"))

    def send_folders(self, tool: S3Tool, prefix: str,
                     problems: list[str]) -> tuple[list[str], dict[str, int]]:
        """Each ``upload_dirs`` folder found on the volume, synced up; (folders, expected
        ``{key: size}``)."""
        folders: list[str] = []
        expected: dict[str, int] = {}
        for name in self.ctx.spec.upload_dirs:
            clean = name.strip("/")
            source = self.point / clean
            if not is_safe_relative(clean) or clean in RESERVED:
                problems.append(f"upload_dirs entry {name!r} is not a plain folder name")
            elif source.is_dir():
                try:
                    tool.sync_up(str(source), bucket_url(self.ctx, f"{prefix}/{clean}/"))
                except tools.ToolError as exc:
                    problems.append(str(exc))
                folders.append(clean)
                expected |= {f"{prefix}/{clean}/{sub}": size
                             for sub, size in regular_files(source).items()}
            else:
                self.ctx.log(f"salvage: the volume has no {clean}/; nothing to upload from it")
        return folders, expected

    def send_record(self, tool: S3Tool, key: str, record: SalvageRecord) -> bool:
        """Upload ``salvage.json`` and find it in the bucket with its size."""
        state = Path(self.ctx.spec.paths.state_dir)
        try:
            with tempfile.TemporaryDirectory(prefix="salvage-", dir=state) as tmp:
                path = Path(tmp) / RECORD
                path.write_text(json.dumps(asdict(record), indent=2), encoding="utf-8")
                tool.cp_up(str(path), bucket_url(self.ctx, key))
                missing = verify(tool, bucket_url(self.ctx, key), {key: path.stat().st_size},
                                 sleep=self.ctx.sleep)
        except (tools.ToolError, OSError) as exc:
            self.ctx.log(f"salvage: {RECORD}: {scrub(str(exc), self.ctx.secrets)}")
            return False
        return not missing


def _seg(value: str) -> str:
    return urllib.parse.quote(value, safe="")
