"""The env phase: the training code's own Python environment, on the volume.

``spec.python_env.install`` is pip's arguments (``-e .``, ``-r requirements.txt``), run in
the code directory. They are installed into ``<mount>/venvs/<key>``, a virtual environment
made with ``python_env.python`` (seeing that python's own packages with
``system_site_packages``), where ``key`` hashes what decides its contents: that python's
version, the pip arguments, whether it sees those packages, and the bytes of each
``key_files`` entry the code has (``pyproject.toml``, ``requirements.txt``, lock files). A
reused volume whose environment for that key is complete (``.launcher-ready`` written after
pip succeeded) skips the install; an incomplete one (a crash mid-install) is removed and
made again. An editable install (``-e``) points at ``paths.code_dir``, which every run
refills at the same path, so the environment stays valid while the code changes and its
dependencies do not.

pip runs as root (the trainer only reads the environment), with the runner's environment
less anything credential-like, a deadline, and its output in ``<log_dir>/pip.log`` (uploaded
with the logs). The training command then finds the environment first on its ``PATH``
(``python``, ``torchrun``), and the health phase probes with its python.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from launcher.runner import tools
from launcher.runner.context import Context
from launcher.runner.health import probe_env
from launcher.runner.status import PhaseFailed

PHASE = "env"
READY = ".launcher-ready"
PIP_TIMEOUT_S = 3600.0
VERSION_TIMEOUT_S = 60.0
KEY_LENGTH = 16


@dataclass(frozen=True)
class PythonEnvResult:
    """The environment the command runs in: its folder, whether it was reused, how long
    making it took (0 when reused)."""

    path: Path
    reused: bool
    seconds: float = 0.0

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")


def venvs_dir(ctx: Context) -> Path:
    return ctx.mount / "venvs"


def prepare(ctx: Context, code_dir: Path) -> PythonEnvResult | None:
    """Make (or reuse) the environment and record it in ``ctx.python_env``; None, and
    nothing done, when the spec installs nothing."""
    env_spec = ctx.spec.python_env
    if not env_spec.install:
        return None
    key = env_key(ctx, code_dir)
    path = venvs_dir(ctx) / key
    if (path / READY).is_file():
        result = PythonEnvResult(path, reused=True)
        ctx.reporter.note(f"env: reused {path} (key {key})")
    else:
        started = ctx.clock()
        _build(ctx, code_dir, path, key)
        result = PythonEnvResult(path, reused=False, seconds=round(ctx.clock() - started, 1))
        ctx.reporter.note(f"env: installed {' '.join(env_spec.install)} into {path} "
                          f"in {result.seconds:g}s")
    ctx.python_env = result
    return result


def env_key(ctx: Context, code_dir: Path) -> str:
    """A hash of what decides the environment's contents (see the module's docstring)."""
    env_spec = ctx.spec.python_env
    digest = hashlib.sha256()
    digest.update(json.dumps([_python_version(ctx), env_spec.python, env_spec.pip_args,
                              env_spec.install, bool(env_spec.system_site_packages)]).encode())
    for name in env_spec.key_files:
        path = code_dir / name
        if path.is_file() and not path.is_symlink():
            digest.update(f"\0{name}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:KEY_LENGTH]


def _python_version(ctx: Context) -> str:
    python = ctx.spec.python_env.python
    try:
        result = tools.run([python, "-c", "import sys; print(sys.version)"],
                           timeout=VERSION_TIMEOUT_S, env=probe_env(ctx.base_env))
    except tools.ToolError as exc:
        raise PhaseFailed(PHASE, f"python_env.python: {exc}") from None
    return result.stdout.strip()


def _build(ctx: Context, code_dir: Path, path: Path, key: str) -> None:
    env_spec = ctx.spec.python_env
    shutil.rmtree(path, ignore_errors=True)  # an install that did not finish
    path.parent.mkdir(parents=True, exist_ok=True)
    env = probe_env(ctx.base_env)
    timeout = max(60.0, min(PIP_TIMEOUT_S, ctx.seconds_left()))
    log = Path(ctx.spec.paths.log_dir) / "pip.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    shared = ["--system-site-packages"] if env_spec.system_site_packages else []
    steps = (("venv", [env_spec.python, "-m", "venv", *shared, str(path)]),
             ("pip install", [str(path / "bin" / "python"), "-m", "pip", "install",
                              "--no-input", "--disable-pip-version-check",
                              *env_spec.pip_args, *env_spec.install]))
    for what, argv in steps:
        run_step(ctx, argv, what=what, log=log, timeout=timeout, env=env, cwd=str(code_dir))
    marker = {"key": key, "created": time.time(), "install": list(env_spec.install),
              "pip_args": list(env_spec.pip_args)}
    (path / READY).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def run_step(ctx: Context, argv: list[str], *, what: str, log: Path, timeout: float,
             env: dict[str, str], cwd: str | None = None) -> None:
    """One command of the env phase, its output appended to ``log`` (uploaded with the
    logs); :class:`PhaseFailed` naming ``what``, the log and the end of stderr when it
    fails."""
    ctx.log(f"env: {' '.join(argv)}")
    try:
        result = tools.run(argv, timeout=timeout, env=env, cwd=cwd, check=False)
    except tools.ToolError as exc:
        raise PhaseFailed(PHASE, f"{what}: {exc}") from None
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(argv)}\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        tail = " ".join(result.stderr.split())[-400:]
        raise PhaseFailed(PHASE, f"{what} failed with exit status {result.returncode} "
                                 f"(see logs/{log.name}): {tail}")
