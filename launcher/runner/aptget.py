"""System packages a container image lacks, installed before the training code's environment.

A Vast.ai instance runs a public Docker image. The official ``pytorch/pytorch`` images install
``ca-certificates``, ``libjpeg-dev`` and ``libpng-dev`` in their final stage and no ``git``
(pytorch/pytorch ``Dockerfile``, stage ``official``), while UPS's ``pip install -e .`` fetches a
dependency from a git URL (``flash-muon @ git+https://…`` in its pyproject.toml); its own
Vast script runs ``apt-get install -y git …`` for that reason. ``container.apt_packages``
(``vast.apt_packages`` of the config, default ``git``) names such packages:

- each is looked up with ``dpkg-query`` and only the ones not installed are installed;
- ``apt-get update`` then ``apt-get install -y --no-install-recommends``, non-interactive, as
  the runner's user (root in a Vast container), with a deadline and the runner's environment
  less anything credential-like; the output goes to ``<log_dir>/apt.log`` (uploaded with the
  logs);
- a failure, or an image without ``apt-get``, fails the ``env`` phase naming the packages:
  pip would otherwise fail later with a less direct message.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from launcher.runner import tools
from launcher.runner.context import Context
from launcher.runner.health import probe_env
from launcher.runner.pyenv import run_step
from launcher.runner.status import PhaseFailed

PHASE = "env"
PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]{0,99}$")  # Debian policy 5.6.1, bounded
APT_TIMEOUT_S = 900.0
QUERY_TIMEOUT_S = 30.0


def ensure(ctx: Context, packages: tuple[str, ...]) -> tuple[str, ...]:
    """Install those of ``packages`` that are missing; returns what was installed."""
    bad = [p for p in packages if not PACKAGE.match(p)]
    if bad:
        raise PhaseFailed(PHASE, f"container.apt_packages: {bad[0]!r} is not a Debian "
                                 "package name")
    env = {**probe_env(ctx.base_env), "DEBIAN_FRONTEND": "noninteractive"}
    missing = tuple(p for p in packages if not _installed(p, env))
    if not missing:
        return ()
    names = " ".join(missing)
    if shutil.which("apt-get", path=env.get("PATH")) is None:
        raise PhaseFailed(PHASE, f"the image lacks {names} and has no apt-get to install it: "
                                 "use an image that has it (vast.image)")
    timeout = max(60.0, min(APT_TIMEOUT_S, ctx.seconds_left()))
    log = Path(ctx.spec.paths.log_dir) / "apt.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    for argv in (["apt-get", "update", "-qq"],
                 ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]):
        run_step(ctx, argv, what=f"installing {names}: {' '.join(argv[:2])}", log=log,
                 timeout=timeout, env=env)
    ctx.reporter.note(f"env: installed {names} with apt-get (the image lacked it)")
    return missing


def _installed(package: str, env: dict[str, str]) -> bool:
    try:
        result = tools.run(["dpkg-query", "-W", "-f=${db:Status-Status}", package],
                           timeout=QUERY_TIMEOUT_S, env=env, check=False)
    except tools.ToolError:  # no dpkg at all: apt-get (if any) decides below
        return False
    return result.returncode == 0 and result.stdout.strip() == "installed"
