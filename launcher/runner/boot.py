"""The instance's first step: fetch the runner and the run spec, each pinned by sha256, or
remove the run's instance when they cannot be had.

Why: the run document (user data) must stay small. Vultr documents no user-data limit and the
strictest we know is AWS's 16 KiB, so the document carries only this bootstrap
(``boot.pyz``: this module with :mod:`~launcher.runner.vultr` and its
:mod:`~launcher.runner.retry`, :mod:`~launcher.runner.tools`,
:mod:`~launcher.runner.s5cmd` and :mod:`~launcher.runner.secretsfile`), ``boot.json`` (a
:class:`BootSpec`), the root-only secrets file and the systemd units. The runner
(``runner.pyz``) and the run spec (``run.json``) wait in the bucket under
``<runs_prefix>/<run_id>/boot/``, put there by the launcher before it creates the instance.

``python3 boot.pyz fetch --boot /etc/launcher/boot.json`` is the runner unit's
``ExecStartPre``: the runner starts only once every file is in place.

- Each file is copied with s5cmd (the run's B2 key in its environment only) next to its
  destination, checked (size, sha256), given its mode and renamed into place: a half-written
  or altered runner never runs. A file already in place with the right sha256 is kept.
- Failed copies are retried in rounds with capped exponential backoff until
  ``fetch_deadline_s``; a sha256 mismatch is final (the bucket holds something else).
- Then the instance's Vultr key is proved from here, the address it will delete itself from
  (one ``GET /blocks``, what its teardown reads first): the launcher proved it from the
  operator's address only, and a key whose API access control leaves this address out would
  train for hours and then be unable to delete anything. A refusal (401/403) stops the run
  before it starts; no answer at all is logged and the run goes on.
- When the files cannot be had, nothing of the run has happened yet: the bootstrap sends a
  ``status.json`` saying why (the runner status's fields), deletes the volume only when the
  launcher created it for this run (it holds nothing; a reused volume is kept and named), and
  deletes this instance. Whatever it could not delete is named in that status with the
  command that deletes it.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from launcher.runner.retry import RetryPolicy
from launcher.runner.s5cmd import find_binary, s5cmd_env
from launcher.runner.secretsfile import SECRET_NAMES, read_env_file, scrub_values
from launcher.runner.tools import ToolError, run
from launcher.runner.vultr import (
    REFUSED,
    ApiError,
    SelfApi,
    instance_id,
    refusal_note,
    remove_block,
)

BOOT_VERSION = 1
SHA256 = re.compile(r"^[0-9a-f]{64}$")
MODE = re.compile(r"^0[0-7]{3}$")
COPY_TIMEOUT_S = 300.0
KEY_PROOF_DEADLINE_S = 120.0
MAX_DELAY_S = 60.0
DETACH_WAIT_S = 180.0
Log = Callable[[str], None]


class BootFailed(RuntimeError):
    """The files could not be had; the message says which and why (scrubbed)."""


@dataclass(frozen=True)
class Pinned:
    """One file to fetch: bucket ``key`` -> instance ``path``, exactly ``size`` bytes with
    this ``sha256``, mode ``mode`` (octal text)."""

    key: str
    path: str
    sha256: str
    size: int
    mode: str = "0644"


@dataclass(frozen=True)
class BootSpec:
    """``boot.json``: where the files are, and what to remove when they cannot be had.
    ``delete_volume`` is true only for a volume the launcher created for this run."""

    run_id: str
    endpoint_url: str
    bucket: str
    region: str
    files: tuple[Pinned, ...]
    status_key: str
    api_url: str
    block_id: str
    delete_volume: bool
    secrets_file: str = "/etc/launcher/secrets.env"
    metadata_url: str = "http://169.254.169.254"
    fetch_deadline_s: float = 900.0
    version: int = BOOT_VERSION
    # A node of an N-node run: its ``node:<k>`` tag (the run tag alone names N instances).
    node_tag: str = ""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            wanted = {"files": tuple, "delete_volume": bool, "version": int,
                      "fetch_deadline_s": (int, float)}.get(field.name, str)
            if not isinstance(value, wanted) or (wanted is str and field.name in (
                    "run_id", "endpoint_url", "bucket", "status_key", "api_url") and not value):
                raise ValueError(f"boot spec: {field.name} is missing or of the wrong type")
        for pin in self.files:
            if not (isinstance(pin, Pinned) and pin.key and pin.path.startswith("/")
                    and SHA256.match(pin.sha256) and MODE.match(pin.mode)
                    and isinstance(pin.size, int) and pin.size >= 0):
                raise ValueError(f"boot spec: file {pin!r} is not a pinned file")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> BootSpec:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != BOOT_VERSION:
            raise ValueError(f"not a boot spec of version {BOOT_VERSION}")
        try:
            files = tuple(Pinned(**entry) for entry in data.pop("files"))
            return cls(files=files, **data)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"boot spec: {exc}") from None


# -- fetching ---------------------------------------------------------------------------------

def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def in_place(pin: Pinned) -> bool:
    """Whether ``pin.path`` already holds exactly the pinned bytes."""
    try:
        return os.path.getsize(pin.path) == pin.size and sha256_of(pin.path) == pin.sha256
    except OSError:
        return False


def fetch_one(boot: BootSpec, pin: Pinned, env: dict[str, str]) -> None:
    """Copy, check, chmod and rename one file; ToolError to retry, BootFailed when final."""
    target = Path(pin.path)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    partial = target.with_name(f".{target.name}.part")
    argv = [find_binary(env), f"--endpoint-url={boot.endpoint_url}", "--retry-count=3",
            "cp", "--raw", f"s3://{boot.bucket}/{pin.key}", str(partial)]
    try:
        run(argv, timeout=COPY_TIMEOUT_S, env=env)
        got = sha256_of(partial)
        if got != pin.sha256 or partial.stat().st_size != pin.size:
            raise BootFailed(f"{pin.key}: sha256 {got[:12]}…, {partial.stat().st_size} bytes; "
                             f"pinned {pin.sha256[:12]}…, {pin.size} bytes — the bucket "
                             "holds another file under that key")
        os.chmod(partial, int(pin.mode, 8))
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def fetch_all(boot: BootSpec, env: dict[str, str], log: Log, *,
              clock: Callable[[], float] = time.monotonic,
              sleep: Callable[[float], None] = time.sleep) -> None:
    """Every pinned file in place, or :class:`BootFailed` once ``fetch_deadline_s`` is up."""
    deadline = clock() + boot.fetch_deadline_s
    pending = [pin for pin in boot.files if not in_place(pin)]
    delay, rounds = 2.0, 0
    while pending:
        rounds += 1
        problems = []
        for pin in list(pending):
            try:
                fetch_one(boot, pin, env)
            except ToolError as exc:
                problems.append(f"{pin.key}: {exc}")
                continue
            pending.remove(pin)
            log(f"boot: {pin.path} in place ({pin.size:,} bytes, sha256 {pin.sha256[:12]}…)")
        if not pending:
            return
        if clock() + delay > deadline:
            raise BootFailed(f"could not fetch {len(pending)} file(s) in {rounds} round(s) "
                             f"over {boot.fetch_deadline_s:g}s: {problems[-1]}")
        log(f"boot: round {rounds} failed ({problems[-1]}); again in {delay:g}s")
        sleep(delay)
        delay = min(delay * 2, MAX_DELAY_S)


def prove_key(boot: BootSpec, secrets: dict[str, str], log: Log) -> None:
    """:class:`BootFailed` when Vultr refuses this instance's key; anything else is logged."""
    key = secrets.get("VULTR_KEY", "")
    if not key:
        return  # remove_self names what it cannot delete; nothing to prove here
    api = SelfApi(boot.api_url, key, policy=RetryPolicy(max_attempts=None,
                                                          deadline_s=KEY_PROOF_DEADLINE_S))
    try:
        api.request("GET", "/blocks?per_page=1")
    except ApiError as exc:
        if exc.status not in REFUSED:
            log(f"boot: the Vultr key could not be proved ({exc}); going on")
            return
        raise BootFailed(f"this instance's Vultr key was refused from its own address ({exc}): "
                         "it could not delete its volume or itself at the end, so the run "
                         "stops before it starts; allow this address in the self-destruct "
                         "key's API access control (or 'allow all'), then launch again") from None
    log("boot: the Vultr key is accepted from this address")


# -- giving up --------------------------------------------------------------------------------

def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def failure_status(boot: BootSpec, reason: str, started: str, left: list[str]) -> dict:
    """A ``status.json`` with the runner status's fields: failed in phase ``boot``."""
    ended = utc_now()
    return {"run_id": boot.run_id, "state": "failed", "phase": "boot",
            "phases": [{"name": "boot", "started": started, "ended": ended, "seconds": 0.0,
                        "ok": False, "detail": reason}],
            "reason": f"boot: {reason}", "left_behind": list(left),
            "notes": ["the runner never started: this instance removes itself"],
            "updated": ended, "node": None, "nodes": 0}  # a node's key says which node


def send_status(boot: BootSpec, status: dict, env: dict[str, str], log: Log) -> None:
    """Upload ``status`` to the bucket; a failure is logged, never raised."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(status, handle, indent=2)
    argv = [find_binary(env), f"--endpoint-url={boot.endpoint_url}", "--retry-count=3",
            "cp", "--raw", handle.name, f"s3://{boot.bucket}/{boot.status_key}"]
    try:
        run(argv, timeout=COPY_TIMEOUT_S, env=env)
    except ToolError as exc:
        log(f"boot: status upload failed: {exc}")
    finally:
        os.unlink(handle.name)


def curl_delete(boot: BootSpec, path: str) -> str:
    return (f"curl -X DELETE -H \"Authorization: Bearer $VULTR_KEY\" "
            f"{boot.api_url.rstrip('/')}{path}")


def release_volume(boot: BootSpec, api: SelfApi, log: Log) -> str:
    """Delete the run's fresh volume; a left-behind line (or "") for the status."""
    block = boot.block_id
    if not block:
        return ""
    if not boot.delete_volume:
        return (f"volume {block} kept (reused by this run; it was never mounted); it bills "
                f"until deleted: {curl_delete(boot, f'/blocks/{block}')}")
    try:
        deleted = remove_block(api, block, wait_s=DETACH_WAIT_S, poll_s=2.0)
    except (ApiError, TimeoutError) as exc:
        log(f"boot: volume {block}: {exc}")
        return (f"volume {block} still exists — delete it: "
                f"{curl_delete(boot, f'/blocks/{block}')}{refusal_note(exc)}")
    log(f"boot: volume {block} {'deleted' if deleted else 'was already gone'}")
    return ""


def remove_self(boot: BootSpec, secrets: dict[str, str], reason: str, started: str,
                env: dict[str, str], log: Log, api: SelfApi | None = None) -> list[str]:
    """Report, release the volume, delete this instance; what is left behind."""
    key = secrets.get("VULTR_KEY", "")
    policy = RetryPolicy(max_attempts=None, deadline_s=180.0)
    api = api or (SelfApi(boot.api_url, key, policy=policy) if key else None)
    left = [] if api else [f"nothing deleted: no VULTR_KEY in {boot.secrets_file} — find the "
                           f"run's volume and instance by tag run:{boot.run_id}"]
    if api is not None:
        left += [line for line in [release_volume(boot, api, log)] if line]
    send_status(boot, failure_status(boot, reason, started, left), env, log)
    if api is None:
        return left
    iid = ""
    try:
        iid = instance_id(boot.metadata_url, api, boot.run_id, node_tag=boot.node_tag, log=log)
        gone = not api.delete_instance(iid)
        log(f"boot: instance {iid} {'was already gone' if gone else 'delete accepted'}")
    except ApiError as exc:
        log(f"boot: deleting this instance failed: {exc}")
        which, path = (f"instance {iid}", f"/instances/{iid}") if iid else \
            ("the instance", "/instances/<id>")
        left.append(f"{which} of run {boot.run_id} (tag run:{boot.run_id}) still exists — "
                    f"delete it: {curl_delete(boot, path)}{refusal_note(exc)}")
        send_status(boot, failure_status(boot, reason, started, left), env, log)
    return left



# -- the command ------------------------------------------------------------------------------

def boot(spec_path: str, log: Log) -> int:
    """Fetch everything (exit 0) or remove this instance (exit 1); 2 for an unusable spec."""
    started = utc_now()
    try:
        spec = BootSpec.from_json(Path(spec_path).read_text(encoding="utf-8"))
        secrets = read_env_file(spec.secrets_file, SECRET_NAMES)
    except (OSError, ValueError) as exc:
        log(f"boot: cannot start: {exc}")
        return 2
    values = [v for v in secrets.values() if v]

    def scrubbed(message: str) -> None:
        log(scrub_values(message, values))

    env = s5cmd_env(os.environ, secrets.get("B2_KEY_ID", ""), secrets.get("B2_APP_KEY", ""),
                    spec.region)
    try:
        fetch_all(spec, env, scrubbed)
        prove_key(spec, secrets, scrubbed)
        return 0
    except Exception as exc:  # whatever stops the runner, the instance must not stay billing
        why = str(exc) if isinstance(exc, BootFailed) else f"{type(exc).__name__}: {exc}"
        reason = scrub_values(why, values)
    scrubbed(f"boot: FAILED: {reason}")
    try:
        for line in remove_self(spec, secrets, reason, started, env, scrubbed):
            scrubbed(f"boot: left behind: {line}")
    except Exception as exc:
        scrubbed(f"boot: removing this instance crashed: {type(exc).__name__}: {exc} — find "
                 f"the run's volume and instance by tag run:{spec.run_id} and delete them")
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="boot", description="fetch the runner and the run "
                                     "spec, pinned by sha256; or remove this instance")
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser("fetch", help="fetch every pinned file")
    fetch.add_argument("--boot", required=True, help="the boot spec (boot.json)")
    args = parser.parse_args(argv)
    return boot(args.boot, _stderr)


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
