"""``python3 -m launcher.runner`` (or ``python3 runner.pyz``): the runner's entry points.

- ``supervise --spec PATH``                 the whole run (exit 0: trained and uploaded)
- ``watchdog --spec PATH [--loop]``         one check (or a loop) that ends an overdue run
- ``teardown --spec PATH [--keep-volume]``  release the volume, delete this instance
- ``status --spec PATH``                    print ``status.json``
- ``container --spec PATH``                 container mode (Vast.ai): secrets from the
  environment, s5cmd, then the supervisor and the watchdog loop (see ``container.py``)

One error funnel: a bad spec, secrets file or argument is one line on stderr and exit 2; an
unexpected error is one (scrubbed) line and exit 1.

``LAUNCHER_RUNNER_TEST_HOST_ROOT`` (end-to-end tests only) makes ``supervise`` read the host's
devices, mounts, fstab and cloud-init cache under that directory; refused (exit 2) unless the
spec is ``health.cpu_only``, and noted in the status when honoured.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from launcher.runner.context import Context
from launcher.runner.spec import RunSecrets, RunSpec, SpecError, read_secrets, scrub
from launcher.runner.statefiles import StateDir, resume_status
from launcher.runner.status import Reporter

PROG = "runner"


class UsageError(Exception):
    """Bad input: reported as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="The on-instance training runner.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("supervise", "run every phase, upload, tear down"),
                       ("watchdog", "end the run if its deadline passed or the supervisor died"),
                       ("teardown", "release the volume and delete this instance"),
                       ("status", "print status.json"),
                       ("container", "container mode: start the supervisor and the "
                                     "watchdog loop, then wait for both")):
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("--spec", required=True, help="the run spec (run.json)")
        if name == "watchdog":
            sub.add_argument("--loop", action="store_true", help="check every minute")
        if name == "teardown":
            sub.add_argument("--keep-volume", action="store_true",
                             help="keep the block volume whatever the spec says")
    return parser


def load_spec(path: str) -> RunSpec:
    try:
        return RunSpec.load(path)
    except OSError as exc:
        raise UsageError(f"cannot read spec {path}: {exc.strerror}") from None


def load_secrets(spec: RunSpec) -> RunSecrets:
    try:
        return read_secrets(spec.paths.secrets_file, spec.secret_names)
    except OSError as exc:
        raise UsageError(f"cannot read secrets {spec.paths.secrets_file}: {exc.strerror}"
                         ) from None


def make_context(spec: RunSpec, secrets: RunSecrets) -> Context:
    """The context every command runs in: the reporter scrubs every secret value."""
    reporter = Reporter(spec.run_id, spec.paths.state_dir, spec.paths.log_dir,
                        scrub=lambda text: scrub(text, secrets))
    resume_status(reporter)
    if spec.cluster is not None:  # not saved here: the supervisor's own write carries it
        reporter.status.node, reporter.status.nodes = spec.cluster.node_index, spec.cluster.nodes
    return Context(spec, secrets, reporter)


def _supervise(ctx: Context, args: argparse.Namespace) -> int:
    from launcher.runner.supervisor import TEST_HOST_ENV, Phases, supervise

    root = ctx.base_env.get(TEST_HOST_ENV, "")
    if ctx.spec.in_container:
        from launcher.runner import container

        if ctx.base_env.get(container.NOTE_ENV):
            ctx.reporter.note(ctx.base_env[container.NOTE_ENV])
        return supervise(ctx, container.container_phases())
    if not root:
        return supervise(ctx)
    # End-to-end tests point the host's devices, mounts, fstab and cloud-init cache into a
    # temp dir. Never on a GPU run, never silently: refused without cpu_only, else noted.
    if not ctx.spec.health.cpu_only:
        raise UsageError(f"{TEST_HOST_ENV} is set but health.cpu_only is not: refusing "
                         "(a test host root is for cpu_only test runs only)")
    if not os.path.isabs(root) or not os.path.isdir(root):
        raise UsageError(f"{TEST_HOST_ENV}={root!r} is not an absolute path to a directory")
    ctx.reporter.note(f"TEST HOST: {TEST_HOST_ENV}={root}: devices, mounts, fstab and "
                      "cloud-init's cache are read under it — a test run, not a real one")
    return supervise(ctx, Phases.on_test_host(Path(root)))


def _watchdog(ctx: Context, args: argparse.Namespace) -> int:
    from launcher.runner import watchdog

    opts = None
    if ctx.spec.in_container:
        from launcher.runner.container import watchdog_options

        opts = watchdog_options(ctx.spec)
    verdict = (watchdog.run_loop if args.loop else watchdog.check_once)(ctx, opts=opts)
    if verdict.act:
        ctx.log(f"watchdog: acted: {verdict.reason}")
    else:  # journald only: a line a minute would drown runner.log
        sys.stderr.write(f"watchdog: {verdict.reason}\n")
    return 0


def _teardown(ctx: Context, args: argparse.Namespace) -> int:
    from launcher.runner.teardown import teardown

    verified = StateDir(Path(ctx.spec.paths.state_dir)).upload_verified()
    left = teardown(ctx, verified, keep_volume=True if args.keep_volume else None)
    for line in left:
        sys.stdout.write(f"left behind: {line}\n")
    return 1 if left else 0


def _status(spec: RunSpec) -> int:
    path = Path(spec.paths.state_dir) / "status.json"
    try:
        sys.stdout.write(path.read_text(encoding="utf-8").rstrip("\n") + "\n")
    except OSError as exc:
        raise UsageError(f"no status at {path}: {exc.strerror}") from None
    return 0


COMMANDS = {"supervise": _supervise, "watchdog": _watchdog, "teardown": _teardown}


def _container(spec_path: str) -> int:
    from launcher.runner import container

    return container.start(spec_path)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    secrets = RunSecrets()
    try:
        if args.command == "container":  # the secrets are in the environment, not a file yet
            return _container(args.spec)
        spec = load_spec(args.spec)
        if args.command == "status":
            return _status(spec)
        secrets = load_secrets(spec)
        return COMMANDS[args.command](make_context(spec, secrets), args)
    except (SpecError, UsageError) as exc:
        sys.stderr.write(f"{PROG}: {scrub(str(exc), secrets)}\n")
        return 2
    except Exception as exc:  # the funnel: one line, never a traceback full of values
        line = scrub(f"{type(exc).__name__}: {exc}", secrets)
        sys.stderr.write(f"{PROG}: internal error: {line}\n")
        return 1

