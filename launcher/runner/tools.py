"""Running external programs: argv lists only (never a shell), a timeout on every call,
and failures that say which program failed and how, in one line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

TAIL = 600


class ToolError(RuntimeError):
    """A program failed, timed out or is missing. ``str()`` is one line safe to log after
    scrubbing (it holds the program name, exit status and the tail of its stderr)."""


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def run(argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None,
        cwd: str | None = None, check: bool = True, input_text: str | None = None) -> Result:
    """Run ``argv`` (no shell) and capture its output; raise ToolError on failure if ``check``."""
    argv = tuple(str(a) for a in argv)
    if shutil.which(argv[0], path=(env or os.environ).get("PATH")) is None and "/" not in argv[0]:
        raise ToolError(f"{argv[0]}: not found on PATH")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=cwd, input=input_text, check=False)
    except subprocess.TimeoutExpired:
        raise ToolError(f"{argv[0]}: timed out after {timeout:g}s") from None
    except OSError as exc:
        raise ToolError(f"{argv[0]}: cannot run: {exc.strerror}") from None
    result = Result(argv, done.returncode, done.stdout, done.stderr)
    if check and done.returncode != 0:
        tail = " ".join(done.stderr.split())[-TAIL:]
        raise ToolError(f"{argv[0]}: exit status {done.returncode}: {tail}")
    return result


def retry_until(attempt: Callable[[], bool], *, deadline_s: float, what: str,
                first_delay: float = 1.0, max_delay: float = 30.0,
                clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep) -> None:
    """Call ``attempt()`` until it returns True, with capped exponential backoff, until a
    monotonic deadline; then raise TimeoutError naming ``what``."""
    deadline = clock() + deadline_s
    delay = first_delay
    while not attempt():
        remaining = deadline - clock()
        if remaining <= 0:
            raise TimeoutError(f"{what}: not done after {deadline_s:g}s")
        sleep(min(delay, remaining))
        delay = min(delay * 2, max_delay)
