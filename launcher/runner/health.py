"""The health phase: is this machine fit to train on? GPUs, a CUDA matmul, disk speed, data.

Checks run in order — gpu, python, matmul, disk, data — and the first failure raises
``PhaseFailed("health", ...)`` naming the check, the measured value and the threshold. The
report (as far as it got) is always written to ``<log_dir>/health.json`` so a failed machine
can be diagnosed afterwards from its uploaded logs.

Units. ``min_vram_gb`` is the card's marketed size (40, 48, 80), read as GiB, and passes with
:data:`VRAM_TOLERANCE` below it: ``nvidia-smi`` reports MiB, and ECC on GDDR cards reserves
1/16 of memory (an L40S "48 GB" shows 46068 MiB = 45.0 GiB) while HBM cards show a little
under nominal (H100 80 GB: 81559 MiB). A 7% tolerance admits those and still refuses a card a
size class smaller. ``min_disk_mb_s`` is in MB/s with MB = 10**6 bytes, as dd reports it.

Driver mode. Whether a whole-card plan is PCI passthrough or a vGPU is not settled by any
public source; a vGPU needs NVIDIA's GRID driver and a licence, which the baked image lacks
(``health.vgpu_driver`` false). The gpu check reads each GPU's "Virtualization Mode" from
``nvidia-smi -q`` (None, Pass-Through, VGPU, ...) into the report, and refuses a VGPU without
the GRID driver; when nvidia-smi fails at all, the message says a vGPU is the likely cause.

``cpu_only`` (tests and demos) skips nvidia-smi, runs the matmul on the CPU and says so loudly.

``python`` checks ``python_env.requires`` (``torch>=2.9.1``) against what the training
environment has (the env phase's, else the image's python), so an image whose torch is too
old for the code fails here, in seconds, with both versions named. The matmul probe runs
with that same python.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Protocol

from launcher.runner import pins, tools
from launcher.runner.context import Context
from launcher.runner.status import PhaseFailed

VRAM_TOLERANCE = 0.07
CPU_ONLY_NOTE = "CPU-ONLY PROFILE: no GPU checks — test/demo runs only"
NVIDIA_SMI = ("nvidia-smi", "--query-gpu=index,name,memory.total,driver_version",
              "--format=csv,noheader,nounits")
NVIDIA_SMI_QUERY = ("nvidia-smi", "-q")
VIRT_MODE = re.compile(r"^\s*Virtualization Mode\s*:\s*(\S.*?)\s*$", re.MULTILINE)
VGPU_HINT = ("if this plan is a vGPU, the image needs NVIDIA's GRID driver and a licence "
             "(docs/bake.md)")
PROBE_FILE = ".launcher-disk-probe"
DD_BLOCK = 4 * 2**20
SENSITIVE = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL")
SENSITIVE_PREFIXES = ("VULTR_", "B2_", "AWS_", "WANDB_")

# Fixed text, never built from the spec: argv[1] is "cuda" or "cpu", argv[2] the matrix size.
MATMUL_SCRIPT = r"""
import json, sys, time
device, n = sys.argv[1], int(sys.argv[2])
out = {"device": device, "ok": False, "seconds": 0.0, "tflops": 0.0, "count": 0}
try:
    import torch
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("torch.cuda.is_available() is False")
    names = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if device == "cuda" else ["cpu"]
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
    want = a @ b
    worst_err, slowest = 0.0, 0.0
    for name in names:
        da, db = a.to(name), b.to(name)
        (da @ db).sum().item()
        if device == "cuda":
            torch.cuda.synchronize(name)
        start = time.perf_counter()
        got = da @ db
        if device == "cuda":
            torch.cuda.synchronize(name)
        slowest = max(slowest, time.perf_counter() - start)
        err = ((got.cpu() - want).abs().max() / want.abs().max()).item()
        worst_err = max(worst_err, err)
    out.update(count=len(names), seconds=slowest, max_rel_err=worst_err,
               tflops=2 * n ** 3 / max(slowest, 1e-9) / 1e12, ok=worst_err < 1e-2)
except Exception as exc:
    out["error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
sys.exit(0 if out["ok"] else 1)
"""


class Manifest(Protocol):
    """What the data phase promises is in ``<mount>/data``."""

    @property
    def files(self) -> int: ...

    @property
    def bytes(self) -> int: ...


@dataclass(frozen=True)
class Probe:
    """How hard to probe; tests shrink these."""

    python: str = "python3"
    matmul_n: int = 4096
    matmul_n_cpu: int = 512
    matmul_timeout_s: float = 300.0
    disk_mib: int = 256
    disk_timeout_s: float = 300.0
    smi_timeout_s: float = 60.0
    walk_limit: int = 5_000_000


PROBE = Probe()


@dataclass(frozen=True)
class Gpu:
    index: str
    name: str
    memory_mib: int | None
    driver: str


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    measured: str
    threshold: str


@dataclass(frozen=True)
class HealthReport:
    cpu_only: bool
    checks: tuple[Check, ...] = ()
    gpus: tuple[Gpu, ...] = ()
    virtualization: tuple[str, ...] = ()  # each GPU's mode as nvidia-smi -q reports it
    matmul: dict = field(default_factory=dict)
    disk_mb_s: float = 0.0
    data_files: int = 0
    data_bytes: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def check(ctx: Context, manifest: Manifest, probe: Probe = PROBE) -> HealthReport:
    """Run every check; return the report, or raise PhaseFailed at the first failure."""
    report = HealthReport(cpu_only=ctx.spec.health.cpu_only)
    if report.cpu_only:
        ctx.reporter.note(CPU_ONLY_NOTE)
    if ctx.python_env is not None:
        probe = replace(probe, python=ctx.python_env.python)
    steps: list[Callable[[HealthReport], HealthReport]] = [
        lambda r: check_gpus(ctx, r, probe),
        lambda r: check_requirements(ctx, r, probe),
        lambda r: check_matmul(ctx, r, probe),
        lambda r: check_disk(ctx, r, probe),
        lambda r: check_data(ctx, r, manifest, probe),
    ]
    try:
        for step in steps:
            report = step(report)
            _fail_on_last(report)
    finally:
        _save(ctx, report)
    ctx.log("health: " + "; ".join(f"{c.name} {c.measured}" for c in report.checks))
    return report


def _fail_on_last(report: HealthReport) -> None:
    if report.checks and not report.checks[-1].ok:
        last = report.checks[-1]
        raise PhaseFailed("health", f"{last.name}: {last.measured}, need {last.threshold}")


def _with(report: HealthReport, check_: Check, **changes: object) -> HealthReport:
    return replace(report, checks=(*report.checks, check_), **changes)


def _save(ctx: Context, report: HealthReport) -> None:
    path = Path(ctx.spec.paths.log_dir) / "health.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.to_json(), encoding="utf-8")


def parse_gpus(text: str) -> tuple[Gpu, ...]:
    """Rows of ``index, name, memory.total, driver_version``; a name may hold commas, and
    any field may read ``[N/A]`` (memory then becomes None)."""
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 4:
            continue
        memory = parts[-2].split()[0] if parts[-2] else ""
        gpus.append(Gpu(index=parts[0], name=", ".join(parts[1:-2]),
                        memory_mib=int(memory) if memory.isdigit() else None, driver=parts[-1]))
    return tuple(gpus)


def vram_ok(memory_mib: int | None, min_vram_gb: float) -> bool:
    """``memory_mib`` (as nvidia-smi reports) is at least ``min_vram_gb`` less the tolerance."""
    if min_vram_gb <= 0:
        return True
    return memory_mib is not None and memory_mib / 1024 >= min_vram_gb * (1 - VRAM_TOLERANCE)


def model_matches(name: str, wanted: str) -> bool:
    """Case, spaces, ``-`` and ``_`` ignored: ``NVIDIA_A100`` matches ``NVIDIA A100-SXM4-80GB``."""
    def squash(text: str) -> str:
        return "".join(ch for ch in text.lower() if ch.isalnum())
    return not wanted or squash(wanted) in squash(name)


def check_gpus(ctx: Context, report: HealthReport, probe: Probe) -> HealthReport:
    if report.cpu_only:
        return _with(report, Check("gpu", True, "skipped (cpu_only)", "none"))
    health = ctx.spec.health
    try:
        result = tools.run(NVIDIA_SMI, timeout=probe.smi_timeout_s, env=ctx.base_env)
    except tools.ToolError as exc:
        return _with(report, Check("gpu", False, f"nvidia-smi failed ({exc}); {VGPU_HINT}",
                                   "a working GPU"))
    gpus = parse_gpus(result.stdout)
    modes = virtualization_modes(ctx, probe)
    judged = _judge_gpus(gpus, health.min_gpus, health.min_vram_gb, health.gpu_model)
    vgpus = [m for m in modes if "vgpu" in m.lower().replace(" ", "")]
    if judged.ok and vgpus and not health.vgpu_driver:
        judged = Check("gpu", False, f"Virtualization Mode {vgpus[0]}: a vGPU",
                       "passthrough GPUs, or an image with the GRID driver (image.supports_vgpu)")
    elif judged.ok and modes:
        judged = replace(judged, measured=f"{judged.measured} ({', '.join(sorted(set(modes)))})")
    return _with(report, judged, gpus=gpus, virtualization=modes)


def virtualization_modes(ctx: Context, probe: Probe) -> tuple[str, ...]:
    """Each GPU's "Virtualization Mode" from ``nvidia-smi -q``; () when it does not say."""
    try:
        text = tools.run(NVIDIA_SMI_QUERY, timeout=probe.smi_timeout_s, env=ctx.base_env).stdout
    except tools.ToolError:
        return ()
    return tuple(VIRT_MODE.findall(text))


def _judge_gpus(gpus: tuple[Gpu, ...], min_gpus: int, min_vram_gb: float, model: str) -> Check:
    if len(gpus) < min_gpus:
        return Check("gpu", False, f"{len(gpus)} GPU(s)", f">= {min_gpus} GPU(s)")
    for gpu in gpus:
        memory = "[N/A]" if gpu.memory_mib is None else f"{gpu.memory_mib} MiB"
        if not vram_ok(gpu.memory_mib, min_vram_gb):
            return Check("gpu", False, f"GPU {gpu.index} has {memory}",
                         f">= {min_vram_gb} GB (less {VRAM_TOLERANCE:.0%})")
        if not model_matches(gpu.name, model):
            return Check("gpu", False, f"GPU {gpu.index} is {gpu.name!r}", f"model {model!r}")
    names = sorted({g.name for g in gpus})
    return Check("gpu", True, f"{len(gpus)} x {', '.join(names) or '?'}",
                 f">= {min_gpus} GPU(s), >= {min_vram_gb} GB")


def check_requirements(ctx: Context, report: HealthReport, probe: Probe) -> HealthReport:
    requires = ctx.spec.python_env.requires
    if not requires:
        return report
    ok, measured = pins.check(probe.python, requires, probe.smi_timeout_s,
                              probe_env(ctx.base_env))
    return _with(report, Check("python", ok, measured, ", ".join(requires)))


def check_matmul(ctx: Context, report: HealthReport, probe: Probe) -> HealthReport:
    if not ctx.spec.health.matmul:
        return report
    device = "cpu" if report.cpu_only else "cuda"
    size = probe.matmul_n_cpu if report.cpu_only else probe.matmul_n
    found = {**_run_matmul(ctx, device, size, probe), "device": device}
    ok = found.get("ok") is True and (device == "cpu" or _count(found) >= ctx.spec.health.min_gpus)
    measured = (f"{float(found.get('tflops') or 0):.2f} TFLOP/s on {_count(found)} {device}"
                if ok else f"failed: {_why(found, ctx.spec.health.min_gpus)}")
    return _with(report, Check("matmul", ok, measured, f"a correct {device} matmul"),
                 matmul=found)


def _run_matmul(ctx: Context, device: str, size: int, probe: Probe) -> dict:
    """The probe's JSON, or ``{"ok": False, "error": ...}`` saying why there is none."""
    try:
        result = tools.run([probe.python, "-c", MATMUL_SCRIPT, device, str(size)],
                           timeout=probe.matmul_timeout_s, env=probe_env(ctx.base_env),
                           check=False)
    except tools.ToolError as exc:
        return {"ok": False, "error": str(exc)}
    lines = result.stdout.strip().splitlines()
    try:
        found = json.loads(lines[-1]) if lines else None
    except ValueError as exc:
        found = {"ok": False, "error": f"JSONDecodeError: {exc}: {lines[-1][:100]!r}"}
    if not isinstance(found, dict):
        tail = " ".join(result.stderr.split())[-300:]
        found = {"ok": False, "error": f"exit status {result.returncode}, no JSON: {tail}"}
    return found


def probe_env(base_env: dict[str, str]) -> dict[str, str]:
    """The runner's environment less anything credential-like: the probe runs user-space
    torch code and needs none (the runner's secrets live in a file, not its env, anyway)."""
    return {k: v for k, v in base_env.items()
            if not k.upper().startswith(SENSITIVE_PREFIXES)
            and not any(word in k.upper() for word in SENSITIVE)}


def _why(found: dict, min_gpus: int) -> str:
    if found.get("error"):
        return str(found["error"])[:300]
    if found.get("ok") is True:
        return f"ran on {_count(found)} device(s), fewer than {min_gpus}"
    return f"wrong result (max_rel_err {found.get('max_rel_err')})"


def _count(found: dict) -> int:
    count = found.get("count")
    return count if isinstance(count, int) else 0


def check_disk(ctx: Context, report: HealthReport, probe: Probe) -> HealthReport:
    target = ctx.mount / "cache" / PROBE_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        seconds, how = _timed_write(ctx, target, probe)
    except tools.ToolError as exc:
        return _with(report, Check("disk", False, f"write probe failed ({exc})", "a writable disk"))
    finally:
        target.unlink(missing_ok=True)
    speed = _blocks(probe) * DD_BLOCK / 1e6 / max(seconds, 1e-6)
    minimum = ctx.spec.health.min_disk_mb_s
    return _with(report, Check("disk", speed >= minimum, f"{speed:.1f} MB/s ({how})",
                               f">= {minimum:g} MB/s"), disk_mb_s=round(speed, 1))


def _timed_write(ctx: Context, target: Path, probe: Probe) -> tuple[float, str]:
    """Time dd writing ``disk_mib`` MiB (fsync'd). O_DIRECT first; a filesystem that refuses
    it (tmpfs) is measured through the page cache with the final fsync included."""
    argv = ["dd", "if=/dev/zero", f"of={target}", f"bs={DD_BLOCK}", f"count={_blocks(probe)}",
            "conv=fsync"]
    for extra, how in ((["oflag=direct"], "O_DIRECT"), ([], "fsync")):
        started = ctx.clock()
        try:
            tools.run([*argv, *extra], timeout=probe.disk_timeout_s, env=ctx.base_env)
        except tools.ToolError as exc:
            if extra and "Invalid argument" in str(exc):
                continue
            raise
        return ctx.clock() - started, how
    raise tools.ToolError("dd: unreachable")


def _blocks(probe: Probe) -> int:
    return max(1, -(-probe.disk_mib * 2**20 // DD_BLOCK))


def check_data(ctx: Context, report: HealthReport, manifest: Manifest,
               probe: Probe) -> HealthReport:
    root = ctx.mount / "data"
    if not root.is_dir():
        return _with(report, Check("data", False, f"{root} missing", "the synced dataset"))
    files, size, complete = count_files(root, probe.walk_limit)
    ok = complete and files >= manifest.files and size >= manifest.bytes
    more = "" if complete else f" (stopped counting at {probe.walk_limit} entries)"
    return _with(report, Check("data", ok, f"{files} files, {size} bytes{more}",
                               f">= {manifest.files} files, >= {manifest.bytes} bytes"),
                 data_files=files, data_bytes=size)


def count_files(root: Path, limit: int) -> tuple[int, int, bool]:
    """(regular files, their total bytes, whether the walk finished within ``limit`` entries).
    Symlinks are neither followed nor counted."""
    files = size = seen = 0
    for parent, dirs, names in os.walk(root):
        seen += len(dirs) + len(names)
        if seen > limit:
            return files, size, False
        for name in names:
            info = os.lstat(os.path.join(parent, name))
            if stat.S_ISREG(info.st_mode):
                files += 1
                size += info.st_size
    return files, size, True
