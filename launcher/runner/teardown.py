"""Teardown: release the volume, send the last status, delete this instance. Always runs.

Order:

1. Unmount the volume (``umount``, then ``umount -l``), whatever happens next: the filesystem
   is flushed before the disk goes away, or is kept for someone to recover.
2. Upload not verified → the volume is *kept* (its data may be the only copy) and named in
   ``left_behind`` with the command that deletes it. ``keep_volume`` → kept and named too (it
   bills). Otherwise: detach live, wait until ``attached_to_instance`` is empty, delete
   (404 = already gone).
3. Node 0 of an N-node run reaps the run's other instances (:mod:`launcher.runner.reap`).
   Resolve this instance's id (cached in ``state_dir``; metadata; else the run tag, and on a
   node of an N-node run its ``node:<k>`` tag too), note it, run the final-upload hook so the
   last status reaches the bucket, delete the instance.
4. Anything that could not be removed is named in ``left_behind`` (status and return value)
   with how to delete it, and the final-upload hook runs once more so the bucket says so.

In container mode (``spec.in_container``: Vast.ai) there is no volume and the instance is
destroyed through Vast's API instead: :func:`launcher.runner.vast.teardown_container`.

Idempotent and resumable: an ``flock`` on ``teardown.lock`` lets one teardown run at a time
(the watchdog may race the supervisor), and ``teardown.json`` records each resource's fate, so
a second teardown skips what is done, retries what failed, and does nothing once the instance
delete has been accepted. Teardown never raises: what it could not do it reports.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from launcher.runner import tools
from launcher.runner.context import Context
from launcher.runner.retry import RetryPolicy
from launcher.runner.statefiles import INSTANCE_ID, TEARDOWN_LOCK, TEARDOWN_STATE, StateDir
from launcher.runner.vultr import (
    ApiError,
    SelfApi,
    instance_id,
    refusal_note,
    remove_block,
    run_tag,
)

FinalUpload = Callable[[Context], None]


def default_final_upload(ctx: Context) -> None:
    """Send status.json and runner.log to the bucket; train.log stays as uploaded whole."""
    from launcher.runner import upload  # lazy: written apart, and only needed here

    upload.upload_final_status(ctx)


@dataclass(frozen=True)
class TeardownOptions:
    """Time limits of one teardown; tests shrink them."""

    api_timeout_s: float = 30.0
    api_policy: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(max_attempts=None, deadline_s=180.0))
    detach_wait_s: float = 180.0
    detach_poll_s: float = 2.0
    lock_wait_s: float = 1800.0
    umount_timeout_s: float = 60.0
    metadata_deadline_s: float = 20.0
    is_mounted: Callable[[str], bool] = os.path.ismount


@dataclass
class Record:
    """``teardown.json``: each resource's fate ("" not yet, deleted, kept, failed)."""

    volume: str = ""
    instance: str = ""
    left_behind: dict[str, str] = field(default_factory=dict)
    reap: str = ""  # node 0 of an N-node run: "done" once the other nodes were reaped

    @classmethod
    def load(cls, path: Path) -> Record:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(str(data["volume"]), str(data["instance"]), dict(data["left_behind"]),
                       str(data.get("reap", "")))
        except (OSError, ValueError, KeyError, TypeError):
            return cls()

    def save(self, path: Path) -> None:
        temp = path.with_name(path.name + ".tmp")
        data = asdict(self)
        if not self.reap:  # a one-machine run's record keeps its three fields
            del data["reap"]
        temp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.replace(temp, path)


def teardown(ctx: Context, upload_verified: bool, *, final_upload: FinalUpload | None = None,
             keep_volume: bool | None = None, options: TeardownOptions | None = None,
             api: SelfApi | None = None) -> list[str]:
    """Release the volume and delete this instance; return what was left behind (one line
    each, saying how to delete it). ``keep_volume`` overrides the spec's. Never raises."""
    opts = options or TeardownOptions()
    if ctx.spec.in_container:
        from launcher.runner.vast import teardown_container

        return teardown_container(ctx, upload_verified, final_upload=final_upload, options=opts)
    state = StateDir(Path(ctx.spec.paths.state_dir))
    state.root.mkdir(parents=True, exist_ok=True)
    with _exclusive(state.path(TEARDOWN_LOCK), ctx, opts.lock_wait_s) as got:
        if not got:
            what = (f"teardown not run: another teardown held {TEARDOWN_LOCK} for "
                    f"{opts.lock_wait_s:g}s — check that the run's resources "
                    f"(tag {run_tag(ctx.spec.run_id)}) are gone")
            _report(ctx, what)
            return [what]
        try:
            return _teardown_locked(ctx, state, upload_verified, final_upload, keep_volume,
                                    opts, api)
        except Exception as exc:  # a bug here must not leave an instance billing silently
            what = f"teardown crashed ({type(exc).__name__}: {exc}) — check tag " \
                   f"{run_tag(ctx.spec.run_id)} for a volume and an instance that still exist"
            _report(ctx, what)
            return [what]


def _teardown_locked(ctx: Context, state: StateDir, verified: bool,
                     final_upload: FinalUpload | None, keep_volume: bool | None,
                     opts: TeardownOptions, api: SelfApi | None) -> list[str]:
    path = state.path(TEARDOWN_STATE)
    record = Record.load(path)
    if record.instance == "deleted":
        ctx.log("teardown: already done")
        return list(record.left_behind.values())
    ctx.log(f"teardown: start (upload verified: {verified})")
    api = api or _api(ctx, opts)
    if record.volume in ("", "failed"):
        keep = ctx.spec.volume.keep_volume if keep_volume is None else keep_volume
        record.volume, left = _release_volume(ctx, api, verified, keep, opts)
        _settle(ctx, record, "volume", left)
        record.save(path)
    if _reaps(ctx) and record.reap != "done":
        _reap(ctx, api, state, opts, record)
        record.save(path)
    hook = final_upload or default_final_upload
    record.instance, left = _delete_self(ctx, api, state, opts, hook)
    _settle(ctx, record, "instance", left)
    record.save(path)
    if left:
        _final_upload(ctx, hook)  # so the bucket's status names what still bills
    ctx.log(f"teardown: done, {len(record.left_behind)} thing(s) left behind")
    return list(record.left_behind.values())


def _reaps(ctx: Context) -> bool:
    return ctx.spec.cluster is not None and ctx.spec.cluster.node_index == 0


def _reap(ctx: Context, api: SelfApi | None, state: StateDir, opts: TeardownOptions,
          record: Record) -> None:
    """Node 0: the other nodes of the run, after a grace (:func:`launcher.runner.reap.reap`)."""
    from launcher.runner import reap  # lazy: only node 0 of an N-node run needs it

    if api is None:
        left = [f"the run's other nodes were not reaped (no API key) — check tag "
                f"{run_tag(ctx.spec.run_id)} for instances and volumes that still exist"]
    else:
        try:
            own = _own_id(ctx, api, state, opts)
        except ApiError as exc:
            own = ""
            left = [f"the run's other nodes were not reaped: this instance's id is unknown "
                    f"({exc}) — check tag {run_tag(ctx.spec.run_id)}"]
        if own:
            left = reap.reap(ctx, api, own, curl=lambda p: _curl(ctx, p),
                             detach_wait_s=opts.detach_wait_s, detach_poll_s=opts.detach_poll_s)
    for index, line in enumerate(left):
        _settle(ctx, record, f"reap:{index}", line)
    record.reap = "done"


def _settle(ctx: Context, record: Record, what: str, left: str) -> None:
    if left:
        record.left_behind[what] = left
        _report(ctx, left)
    elif what in record.left_behind:
        ctx.reporter.note(f"teardown: resolved: {record.left_behind.pop(what)}")


def _report(ctx: Context, what: str) -> None:
    if what not in ctx.reporter.status.left_behind:
        ctx.reporter.left_behind(what)


def _api(ctx: Context, opts: TeardownOptions) -> SelfApi | None:
    key = ctx.secrets.get("VULTR_KEY")
    if not key:
        ctx.log("teardown: no VULTR_KEY in the secrets: nothing can be deleted")
        return None
    return SelfApi(ctx.spec.api_url, key, timeout=opts.api_timeout_s, policy=opts.api_policy,
                   clock=ctx.clock, sleep=ctx.sleep)


def _curl(ctx: Context, path: str) -> str:
    url = ctx.spec.api_url.rstrip("/")
    return f"curl -X DELETE -H \"Authorization: Bearer $VULTR_KEY\" {url}{path}"


# -- the volume -------------------------------------------------------------------------------

def _release_volume(ctx: Context, api: SelfApi | None, verified: bool, keep: bool,
                    opts: TeardownOptions) -> tuple[str, str]:
    """(fate, left-behind line or "")."""
    block = ctx.spec.volume.block_id
    if not block:
        return "deleted", ""
    unmount(ctx, opts)
    if not verified:
        return "kept", (f"volume {block} kept: upload not verified — recover its data, then "
                        f"delete it: {_curl(ctx, f'/blocks/{block}')}")
    if keep:
        return "kept", (f"volume {block} kept as requested (keep_volume); it bills until "
                        f"deleted: {_curl(ctx, f'/blocks/{block}')}")
    still = f"volume {block} still exists — delete it: {_curl(ctx, f'/blocks/{block}')}"
    if api is None:
        return "failed", still
    try:
        _detach_and_delete(ctx, api, block, opts)
    except (ApiError, TimeoutError) as exc:
        ctx.log(f"teardown: volume {block}: {exc}")
        return "failed", f"{still}{refusal_note(exc) or f' ({exc})'}"
    return "deleted", ""


def _detach_and_delete(ctx: Context, api: SelfApi, block: str, opts: TeardownOptions) -> None:
    deleted = remove_block(api, block, wait_s=opts.detach_wait_s, poll_s=opts.detach_poll_s)
    ctx.log(f"teardown: volume {block} {'deleted' if deleted else 'was already gone'}")


def unmount(ctx: Context, opts: TeardownOptions | None = None) -> bool:
    """Unmount the volume's mount point (lazily if busy); True if it is not mounted after."""
    opts = opts or TeardownOptions()
    point = ctx.spec.volume.mount_point
    if not opts.is_mounted(point):
        return True
    for argv in (["umount", point], ["umount", "-l", point]):
        try:
            tools.run(argv, timeout=opts.umount_timeout_s, env=ctx.base_env)
            ctx.log(f"teardown: {' '.join(argv)}: ok")
            return True
        except tools.ToolError as exc:
            ctx.log(f"teardown: {' '.join(argv)}: {exc}")
    return not opts.is_mounted(point)


# -- the instance -----------------------------------------------------------------------------

def _delete_self(ctx: Context, api: SelfApi | None, state: StateDir, opts: TeardownOptions,
                 hook: FinalUpload) -> tuple[str, str]:
    """(fate, left-behind line or ""); the final-upload hook runs just before the delete."""
    tag = run_tag(ctx.spec.run_id)
    unknown = (f"instance of run {ctx.spec.run_id} (tag {tag}) could not be identified — "
               f"find it by that tag and delete it: {_curl(ctx, '/instances/<id>')} "
               f"or the Vultr UI")
    if api is None:
        _final_upload(ctx, hook)
        return "failed", unknown
    try:
        iid = _own_id(ctx, api, state, opts)
    except ApiError as exc:
        ctx.log(f"teardown: instance id: {exc}")
        _final_upload(ctx, hook)
        return "failed", unknown + refusal_note(exc)
    ctx.reporter.note(f"teardown: deleting instance {iid}")
    _final_upload(ctx, hook)
    try:
        gone = not api.delete_instance(iid)
    except ApiError as exc:
        ctx.log(f"teardown: delete instance {iid}: {exc}")
        return "failed", (f"instance {iid} still exists — delete it: "
                          f"{_curl(ctx, f'/instances/{iid}')} or the Vultr UI"
                          f"{refusal_note(exc)}")
    ctx.log(f"teardown: instance {iid} {'was already gone' if gone else 'delete accepted'}")
    return "deleted", ""


def _own_id(ctx: Context, api: SelfApi, state: StateDir, opts: TeardownOptions) -> str:
    cache = state.path(INSTANCE_ID)
    with contextlib.suppress(OSError):
        cached = cache.read_text(encoding="utf-8").strip()
        if cached:
            return cached
    cluster = ctx.spec.cluster
    iid = instance_id(ctx.spec.metadata_url, api, ctx.spec.run_id,
                      node_tag=f"node:{cluster.node_index}" if cluster is not None else "",
                      metadata_deadline_s=opts.metadata_deadline_s, log=ctx.log)
    cache.write_text(iid + "\n", encoding="utf-8")
    return iid


def _final_upload(ctx: Context, hook: FinalUpload) -> None:
    try:
        hook(ctx)
    except Exception as exc:  # the last status is worth a try, never worth a stuck teardown
        ctx.log(f"teardown: final status upload failed: {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def _exclusive(path: Path, ctx: Context, wait_s: float) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path``; yields False if not had within ``wait_s``."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        def take() -> bool:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        try:
            tools.retry_until(take, deadline_s=wait_s, what="teardown lock", first_delay=0.2,
                              max_delay=5.0, clock=ctx.clock, sleep=ctx.sleep)
            got = True
        except TimeoutError:
            got = False
        yield got
    finally:
        os.close(fd)
