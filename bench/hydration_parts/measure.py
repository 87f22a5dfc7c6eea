"""Measuring one child process (wall time, CPU seconds, peak RSS, the server's CPU), the
environment every candidate shares, and the disk's write limit."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .shared import MB, MIB, REGION, BenchError, tail

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Step:
    """One child process: wall seconds, CPU seconds, peak RSS (KiB), exit code, output."""

    wall: float
    cpu: float
    rss_kib: int
    server_cpu: float
    rc: int
    stdout: str
    stderr: str
    timed_out: bool


def server_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads) from /proc; 0.0 when unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# The child is started by a small Python (about 8 MiB) that reports the tool's own figures:
# a process's ru_maxrss includes what its parent held when it forked, so the bench (tens of
# MiB) must not be the tool's direct parent. Written to the report file: maxrss KiB, CPU s, wall s.
SPAWN = """\
import os, sys, time
report, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(report, "w") as out:
    out.write(f"{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime} {wall}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def measure(argv: list[str], env: dict[str, str], timeout: float, server_pid: int = 0) -> Step:
    """Run ``argv`` to completion (killed as a process group after ``timeout``) and return
    its wall time, CPU seconds and peak RSS as ``os.wait4`` gave them to its parent, plus the
    server's CPU seconds over the same interval."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".rusage") as report:
        srv0 = server_cpu_seconds(server_pid) if server_pid else 0.0
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", SPAWN, report.name, *argv],
                                env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True)
        timed_out = wait_or_kill(proc, timeout)
        outer_wall = time.perf_counter() - start
        srv = (server_cpu_seconds(server_pid) - srv0) if server_pid else 0.0
        try:
            rss, cpu, wall = report.read().split()
            figures = (float(wall), float(cpu), int(rss))
        except ValueError:  # killed before it could report
            figures = (outer_wall, 0.0, 0)
        out.seek(0)
        err.seek(0)
        return Step(*figures, srv, proc.returncode, out.read().decode(errors="replace"),
                    err.read().decode(errors="replace"), timed_out)


def wait_or_kill(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait for ``proc``; kill its process group after ``timeout`` seconds, or at once if the
    wait is interrupted (then re-raise). True when the timeout fired."""
    fired = threading.Event()

    def kill() -> None:
        fired.set()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, kill)
    timer.daemon = True
    timer.start()
    try:
        proc.wait()
    except BaseException:
        timer.cancel()
        kill()
        proc.wait(10)
        raise
    timer.cancel()
    return fired.is_set()


@dataclass
class Result:
    """One sync by one candidate (possibly several child processes, added up)."""

    wall: float = 0.0
    cpu: float = 0.0
    rss_kib: int = 0
    server_cpu: float = 0.0
    fetched: int | None = None
    error: str = ""
    steps: list[float] = field(default_factory=list)  # wall seconds of each child

    def add(self, step: Step) -> Step:
        self.steps.append(round(step.wall, 4))
        self.wall += step.wall
        self.cpu += step.cpu
        self.rss_kib = max(self.rss_kib, step.rss_kib)
        self.server_cpu += step.server_cpu
        if step.timed_out:
            self.error = self.error or "timed out"
        return step


@dataclass
class Ctx:
    """The environment every candidate shares: the server, the keys, the scratch folder."""

    endpoint: str
    key_id: str
    secret: str = field(repr=False)
    work: Path
    timeout: float
    server_pid: int
    s5cmd: str
    pool: ThreadPoolExecutor

    def base_env(self) -> dict[str, str]:
        """This process's environment without any AWS_* / RCLONE_* setting."""
        return {k: v for k, v in os.environ.items()
                if not k.startswith(("AWS_", "RCLONE_"))}

    def aws_env(self) -> dict[str, str]:
        """The keys and B2's settings for AWS-SDK-based tools, no config or credential files."""
        env = self.base_env()
        env.update(AWS_ACCESS_KEY_ID=self.key_id, AWS_SECRET_ACCESS_KEY=self.secret,
                   AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION,
                   AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_CONFIG_FILE=os.devnull,
                   AWS_REQUEST_CHECKSUM_CALCULATION="when_required",
                   AWS_RESPONSE_CHECKSUM_VALIDATION="when_required",
                   AWS_EC2_METADATA_DISABLED="true", AWS_PAGER="")
        return env

    def run(self, result: Result, argv: list[str], env: dict[str, str]) -> Step:
        return result.add(measure(argv, env, self.timeout, self.server_pid))

    def scrub(self, text: str) -> str:
        return text.replace(self.secret, "***").replace(self.key_id, "***")


def tool_version(argv: list[str]) -> str:
    """The first line a tool's version command prints ("unknown ..." when it cannot run)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({type(exc).__name__})"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def disk_limit(ctx: Ctx, mib: int) -> float:
    """dd of ``mib`` MiB of zeros with fdatasync: MB/s."""
    target = ctx.work / "dd.bin"
    try:
        os.sync()
        step = measure(["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={mib}",
                        "conv=fdatasync", "status=none"], ctx.base_env(), ctx.timeout)
        if step.rc:
            raise BenchError(f"dd failed: {tail(step.stderr)}")
        return mib * MIB / step.wall / MB
    finally:
        target.unlink(missing_ok=True)
