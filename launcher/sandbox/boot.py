"""Booting one sandbox machine: from the instance's user data to the runner's argv and env.

:func:`prepare` does what cloud-init and systemd do on a real instance, on disk only: parse
the document, check the run spec may run here, write every file under the machine's host
root (``run.json`` rewritten for the sandbox), and return the :class:`Launch` — the unit's
``ExecStart`` with the instance's paths placed under the host root, and the environment the
runner gets. Starting the process is the caller's business. Refusals raise
:class:`BootRefused` with one line saying why.
"""

from __future__ import annotations

import base64
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from launcher.emulator.records import Instance
from launcher.runner.boot import BootSpec
from launcher.runner.s5cmd import BINARY_ENV
from launcher.runner.spec import RunSpec, SpecError
from launcher.runner.supervisor import TEST_HOST_ENV
from launcher.sandbox.document import BootPlan, DocumentRefused, parse_document
from launcher.sandbox.machine import (
    SERVICE_UMASK,
    SYSTEM_PATH,
    host_path,
    make_dirs,
    make_host,
    write_files,
    write_host_key,
    write_sandbox_json,
)
from launcher.sandbox.respec import Rewrite, SpecRefused, sandbox_boot, sandbox_spec

ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
RESERVED_ENV = {"PATH", "HOME", "TMPDIR", "LANG", TEST_HOST_ENV, BINARY_ENV}
NOT_EMULATED = (
    "systemd: the runner is started directly, with the unit's ExecStart and Environment",
    "the watchdog timer: no deadline watchdog runs next to a sandbox runner",
    "a block device: the volume is a sparse file, mkfs/mount are sandbox fakes",
    "the firewall: iptables is a sandbox fake that records the rule",
    "the GPU: cpu_only documents only; the CPU matmul probe is simulated (no torch)",
    "isolation: the runner and the training command are ordinary processes of the demo "
    "machine, running as its users",
    "sshd: an SSH host key is made (and published by the runner), but nothing listens",
    "the disk: once the runner has ended, the sandbox deletes the machine's secrets file and "
    "cached user data; everything else stays for inspection",
)


class BootRefused(ValueError):
    """The machine cannot boot this document; the message is the one-line reason."""


@dataclass(frozen=True)
class Settings:
    """The backend's choices every machine shares."""

    root: Path
    bin_dir: Path
    python: str
    s5cmd: str
    trainer_user: str


@dataclass(frozen=True)
class Launch:
    """How to start the machine's runner: argv, environment, working directory, where its
    ``state_dir`` is (for finding the training process), and the files holding secrets
    (removed once the runner has ended: a deleted instance takes its disk along)."""

    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: Path
    state_dir: Path
    secret_files: tuple[Path, ...] = ()


def prepare(instance: Instance, host: Path, settings: Settings, metadata_url: str,
            console: Path) -> Launch:
    """Materialise ``instance``'s document under ``host``, run its bootstrap (output appended
    to ``console``); the runner's :class:`Launch`."""
    try:
        plan = parse_document(instance.user_data)
        boot_argv, exec_start = unit_commands(plan)
        boot = load_boot(plan, boot_argv[4])
        hosted, boot_rewrites = sandbox_boot(boot, host, metadata_url=metadata_url)
        plan.file(boot.secrets_file)  # the secrets must come with the document
    except (DocumentRefused, SpecRefused) as exc:
        raise BootRefused(str(exc)) from None
    env = runner_env(plan, host, settings)
    make_host(host, instance.id, base64.b64decode(instance.user_data))
    host_key = write_host_key(host, instance.id)
    files = write_files(host, plan.files, {boot_argv[4]: (hosted.to_json() + "\n").encode()})
    boot_run = (settings.python, str(host_path(host, boot_argv[1])), *boot_argv[2:4],
                str(host_path(host, boot_argv[4])))
    run_bootstrap(boot_run, env, host, console, hosted.fetch_deadline_s)
    spec_path = exec_start[4]
    sandboxed, rewrites = _sandbox_fetched_spec(host, spec_path, metadata_url, settings)
    argv = (settings.python, str(host_path(host, exec_start[1])), *exec_start[2:4],
            str(host_path(host, spec_path)))
    record = {
        "instance_id": instance.id, "host_root": str(host), "unit": plan.unit,
        "document_exec_start_pre": list(boot_argv), "sandbox_boot_argv": list(boot_run),
        "document_exec_start": list(exec_start), "sandbox_argv": list(argv),
        "environment": env, "rewrites": [r.as_dict() for r in (*boot_rewrites, *rewrites)],
        "files": files, "skipped_from_document": list(plan.ignored),
        "not_emulated": list(NOT_EMULATED), "ssh_host_key": host_key,
        "python": settings.python, "python_note": "the unit names the image's python3; a "
        "sandbox runs the bootstrap and the runner with this interpreter instead",
    }
    write_sandbox_json(host_path(host, spec_path).with_name("sandbox.json"), record)
    secret_files = (Path(sandboxed.paths.secrets_file),
                    host / "var/lib/cloud/instances" / instance.id / "user-data.txt")
    return Launch(argv, env, host, Path(sandboxed.paths.state_dir), secret_files)


def _sandbox_fetched_spec(host: Path, spec_path: str, metadata_url: str,
                          settings: Settings) -> tuple[RunSpec, list[Rewrite]]:
    """The run spec the bootstrap fetched, rewritten for the sandbox in place."""
    try:
        spec = RunSpec.from_json(host_path(host, spec_path).read_text(encoding="utf-8"))
        sandboxed, rewrites = sandbox_spec(spec, host, metadata_url=metadata_url,
                                           trainer_user=settings.trainer_user)
    except (OSError, SpecError, SpecRefused) as exc:
        raise BootRefused(f"{spec_path}, as the bootstrap fetched it: {exc}") from None
    host_path(host, spec_path).write_text(sandboxed.to_json() + "\n", encoding="utf-8")
    return sandboxed, rewrites


def unit_commands(plan: BootPlan) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The unit's ``ExecStartPre`` (``<python3> <boot.pyz> fetch --boot <boot.json>``, both
    written by the document) and ``ExecStart`` (``<python3> <runner.pyz> supervise --spec
    <run.json>``, both fetched by the bootstrap); any other shape is refused."""
    pre, start = plan.exec_start_pre, plan.exec_start
    for argv, words, shape in ((pre, ("fetch", "--boot"), "<boot.pyz> fetch --boot <boot.json>"),
                               (start, ("supervise", "--spec"),
                                "<runner.pyz> supervise --spec <run.json>")):
        if not (len(argv) == 5 and PurePosixPath(argv[0]).name.startswith("python3")
                and argv[2:4] == words):
            raise DocumentRefused(f"{plan.unit}: {' '.join(argv) or 'nothing'!r} is not "
                                  f"'<python3> {shape}'")
    plan.file(pre[1])
    return pre, start


def load_boot(plan: BootPlan, path: str) -> BootSpec:
    try:
        return BootSpec.from_json(plan.file(path).data.decode("utf-8"))
    except ValueError as exc:
        raise DocumentRefused(f"{path} is not a boot spec this sandbox reads: {exc}") from None


def run_bootstrap(argv: tuple[str, ...], env: dict[str, str], host: Path, console: Path,
                  deadline_s: float) -> None:
    """The unit's ``ExecStartPre``, as systemd would run it (bounded like its start
    timeout); :class:`BootRefused` with its last line when it fails."""
    make_dirs(console.parent)
    with open(console, "ab") as out:
        out.write(f"=== launcher sandbox: {' '.join(argv)}\n".encode())
        out.flush()
        try:
            done = subprocess.run(argv, env=env, cwd=host, stdin=subprocess.DEVNULL,
                                  stdout=out, stderr=subprocess.STDOUT, check=False,
                                  timeout=deadline_s + 600, umask=SERVICE_UMASK)
        except subprocess.TimeoutExpired:
            raise BootRefused(f"the bootstrap ran past {deadline_s + 600:g}s") from None
    if done.returncode != 0:
        lines = console.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        raise BootRefused(f"the bootstrap failed (exit {done.returncode}): "
                          f"{lines[-1] if lines else 'no output'}")


def runner_env(plan: BootPlan, host: Path, settings: Settings) -> dict[str, str]:
    """A clean environment: the fake tools first on PATH, HOME and TMPDIR inside the
    machine, the test-host root, s5cmd, and the unit's own ``Environment`` settings."""
    env = {"PATH": f"{settings.bin_dir}:{SYSTEM_PATH}", "LANG": "C.UTF-8",
           "HOME": str(host / "root"), "TMPDIR": str(host / "tmp"),
           TEST_HOST_ENV: str(host), BINARY_ENV: settings.s5cmd}
    for name, value in plan.environment:
        if not ENV_NAME.match(name) or name in RESERVED_ENV:
            raise BootRefused(f"{plan.unit}: Environment {name}= is not something a sandbox "
                              "lets a document set")
        env[name] = value
    return env
