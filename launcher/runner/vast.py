"""Container mode's teardown: destroy this Vast.ai instance with its own key. Standard
library only.

Vast sets ``CONTAINER_ID`` and ``CONTAINER_API_KEY`` in every container; the key "can only
start, stop, or destroy that specific instance" (vast-ai/docs api-reference/hello-world.mdx,
guides/instances/docker-environment.mdx). Destroy is ``DELETE <api>/instances/{id}/`` with
``Authorization: Bearer <key>`` (vast-ai/vast-cli vast.py ``destroy_instance``; vast-ai/docs
api-reference/openapi/yaml/destroy_instance.yaml): 200 ``{"success": true}``; 404 ``not_found``
means already gone; 429 ``rate_limit_exceeded`` (``x-rate-limit`` threshold 3.0 per request).
The instance is never *stopped*: a stopped instance keeps billing its storage.

**When the upload was not verified** the instance is destroyed anyway, and its disk with it.
Why, rather than keeping it: a Vast instance has no volume to keep apart from the machine, so
keeping the data means keeping the whole GPU instance running (stopping it keeps billing the
storage, and its data can only be reached by starting it again, on a host that may by then
have no free GPU). The deadline is the cost bound the launch promised, and nobody watches the
instance. So the supervisor first retries the upload until shortly before the deadline
(:func:`launcher.runner.container.upload_until_deadline`), the watchdog tries once more at the
deadline, and only then is the instance destroyed; ``status.json`` (sent to the bucket just
before the destroy, with ``logs/runner.log``) says in a note exactly what was lost: each output
folder's file count and bytes, and the first files by name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from launcher.runner.context import Context
from launcher.runner.retry import RetryPolicy
from launcher.runner.statefiles import INSTANCE_ID, TEARDOWN_LOCK, TEARDOWN_STATE, StateDir
from launcher.runner.vultr import ApiError, SelfApi, _seg

INSTANCE_ENV = "CONTAINER_ID"
KEY_NAME = "CONTAINER_API_KEY"
# Vast's destroy endpoint: x-rate-limit threshold 3.0 per request, so never closer than 3 s.
VAST_SELF_POLICY = RetryPolicy(max_attempts=None, base_delay=3.0, max_delay=30.0,
                               deadline_s=600.0)
LOST_LISTED = 10


class VastSelfApi(SelfApi):
    """The one call a container makes about itself: destroy (repeat-safe: 404 is done)."""

    def destroy_instance(self, instance_id: str) -> bool:
        """Destroy; False when it was already gone (404). A 200 whose body says
        ``success: false`` is a failure (:class:`ApiError`), never a destroy."""
        path = f"/instances/{_seg(instance_id)}/"
        try:
            body = self.request("DELETE", path, {})
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        if isinstance(body, dict) and body.get("success") is False:
            said = body.get("msg") or body.get("error") or "no message"
            raise ApiError(f"DELETE {path}: 200 success=false {said}", 200)
        return True


def destroy_command(api_url: str, instance_id: str) -> str:
    """How a person destroys the instance (vast-cli's own command, then the raw call)."""
    iid = instance_id or "<id>"
    return (f"vastai destroy instance {iid} (or curl -X DELETE -H \"Authorization: Bearer "
            f"$VAST_API_KEY\" {api_url.rstrip('/')}/instances/{iid}/)")


def own_id(ctx: Context, state: StateDir) -> str:
    """``CONTAINER_ID`` (cached in ``state_dir`` by the container entry point)."""
    try:
        cached = state.path(INSTANCE_ID).read_text(encoding="utf-8").strip()
    except OSError:
        cached = ""
    return cached or ctx.base_env.get(INSTANCE_ENV, "").strip()


def unverified_outputs(ctx: Context) -> str:
    """What destroying the container disk loses: per upload folder, files and bytes."""
    parts, names = [], []
    for folder in ctx.spec.upload_dirs:
        root = ctx.mount / folder.strip("/")
        files = [p for p in sorted(root.rglob("*")) if p.is_file()] if root.is_dir() else []
        size = sum(p.stat().st_size for p in files)
        parts.append(f"{folder}/: {len(files)} file(s), {size:,} bytes")
        names += [str(p.relative_to(ctx.mount)) for p in files]
    listed = ", ".join(names[:LOST_LISTED]) + (" …" if len(names) > LOST_LISTED else "")
    return "; ".join(parts) + (f" ({listed})" if listed else "")


def teardown_container(ctx: Context, upload_verified: bool, *,
                       final_upload: Callable[[Context], None] | None = None,
                       options: object = None, api: VastSelfApi | None = None) -> list[str]:
    """Say what is lost (when not verified), send the last status, destroy this instance;
    what was left behind (one line each, with the command that removes it). Never raises.
    Same lock and record as the Vultr teardown: idempotent, one at a time."""
    from launcher.runner import teardown as td

    opts = options if isinstance(options, td.TeardownOptions) else td.TeardownOptions()
    state = StateDir(Path(ctx.spec.paths.state_dir))
    state.root.mkdir(parents=True, exist_ok=True)
    with td._exclusive(state.path(TEARDOWN_LOCK), ctx, opts.lock_wait_s) as got:
        if not got:
            how = destroy_command(ctx.spec.api_url, own_id(ctx, state))
            what = (f"teardown not run: another teardown held {TEARDOWN_LOCK}; check that "
                    f"the instance is gone: {how}")
            td._report(ctx, what)
            return [what]
        try:
            return _locked(ctx, state, upload_verified, final_upload or td.default_final_upload,
                           opts, api)
        except Exception as exc:  # a bug here must not leave an instance billing silently
            what = (f"teardown crashed ({type(exc).__name__}: {exc}) — destroy the instance: "
                    f"{destroy_command(ctx.spec.api_url, own_id(ctx, state))}")
            td._report(ctx, what)
            return [what]


def _locked(ctx: Context, state: StateDir, verified: bool, hook: Callable[[Context], None],
            opts: object, api: VastSelfApi | None) -> list[str]:
    from launcher.runner import teardown as td

    path = state.path(TEARDOWN_STATE)
    record = td.Record.load(path)
    if record.instance == "deleted":
        ctx.log("teardown: already done")
        return list(record.left_behind.values())
    ctx.log(f"teardown: start (container mode; upload verified: {verified})")
    if not record.volume:
        record.volume = "none"  # the cache is the container disk: it goes with the instance
        if not verified:
            ctx.reporter.note("teardown: upload NOT verified; destroying the instance destroys "
                              f"its disk and with it: {unverified_outputs(ctx)}")
        record.save(path)
    record.instance, left = _destroy(ctx, state, hook, opts, api)
    td._settle(ctx, record, "instance", left)
    record.save(path)
    if left:
        td._final_upload(ctx, hook)  # so the bucket's status names what still bills
    ctx.log(f"teardown: done, {len(record.left_behind)} thing(s) left behind")
    return list(record.left_behind.values())


def _destroy(ctx: Context, state: StateDir, hook: Callable[[Context], None], opts: object,
             api: VastSelfApi | None) -> tuple[str, str]:
    """(fate, left-behind line or ""); the final-upload hook runs just before the destroy."""
    from launcher.runner import teardown as td

    iid = own_id(ctx, state)
    key = ctx.secrets.get(KEY_NAME)
    still = f"instance {iid or '(unknown id)'} of run {ctx.spec.run_id} still exists — " \
            f"destroy it: {destroy_command(ctx.spec.api_url, iid)}"
    if not iid or not (key or api):
        why = f"no {INSTANCE_ENV}" if not iid else f"no {KEY_NAME}"
        ctx.log(f"teardown: {why}: the instance cannot destroy itself")
        td._final_upload(ctx, hook)
        return "failed", f"{still} ({why} in the container)"
    api = api or VastSelfApi(ctx.spec.api_url, key, timeout=getattr(opts, "api_timeout_s", 30.0),
                             policy=_policy(opts), clock=ctx.clock, sleep=ctx.sleep)
    ctx.reporter.note(f"teardown: destroying instance {iid}")
    td._final_upload(ctx, hook)
    try:
        gone = not api.destroy_instance(iid)
    except ApiError as exc:
        ctx.log(f"teardown: destroy instance {iid}: {exc}")
        return "failed", f"{still} ({exc})"
    ctx.log(f"teardown: instance {iid} {'was already gone' if gone else 'destroy accepted'}")
    return "deleted", ""


def _policy(opts: object) -> RetryPolicy:
    """Vast's policy, unless the caller set its own ``api_policy`` (tests shrink it)."""
    from launcher.runner.teardown import TeardownOptions

    own = getattr(opts, "api_policy", None)
    return own if isinstance(own, RetryPolicy) and own != TeardownOptions().api_policy \
        else VAST_SELF_POLICY


def destroy_now(api_url: str, key: str, instance_id: str, *, log: Callable[[str], None],
                policy: RetryPolicy = VAST_SELF_POLICY) -> bool:
    """For the container entry point before any run exists: destroy, True once gone."""
    if not (key and instance_id):
        log(f"cannot destroy this instance: {INSTANCE_ENV} or {KEY_NAME} is not set — "
            f"{destroy_command(api_url, instance_id)}")
        return False
    try:
        gone = not VastSelfApi(api_url, key, policy=policy).destroy_instance(instance_id)
    except (ApiError, ValueError) as exc:
        log(f"destroying instance {instance_id} failed: {exc} — "
            f"{destroy_command(api_url, instance_id)}")
        return False
    log(f"instance {instance_id} {'was already gone' if gone else 'destroy accepted'}")
    return True


