"""health.check: GPU count/VRAM/model, CUDA matmul, disk speed, data presence, cpu_only."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from launcher.runner import health
from launcher.runner.status import PhaseFailed

from .conftest import FAKES, make_context, make_spec

A100_80 = "0, NVIDIA A100-SXM4-80GB, 81920, 550.54.15"
PROBE = health.Probe(disk_mib=4, matmul_timeout_s=30)


@dataclass(frozen=True)
class Manifest:
    files: int = 2
    bytes: int = 300


@pytest.fixture
def ctx_for(tmp_path, fakes):
    fakes.env["FAKE_NVSMI"] = A100_80
    data = tmp_path / "mnt" / "data" / "shard"
    data.mkdir(parents=True)
    (data / "a.bin").write_bytes(b"a" * 100)
    (data / "b.bin").write_bytes(b"b" * 200)

    def make(**health_changes):
        health_changes.setdefault("min_disk_mb_s", 1.0)
        health_changes.setdefault("min_vram_gb", 80)
        return make_context(make_spec(tmp_path, health=health_changes), fakes.env)
    return make


def failure(ctx, manifest=Manifest()) -> str:
    with pytest.raises(PhaseFailed) as caught:
        health.check(ctx, manifest, PROBE)
    assert caught.value.phase == "health"
    return caught.value.reason


def test_a_healthy_machine_passes_every_check_and_the_report_is_json(ctx_for, fakes):
    ctx = ctx_for()
    report = health.check(ctx, Manifest(), PROBE)
    assert [c.name for c in report.checks] == ["gpu", "matmul", "disk", "data"]
    assert all(c.ok for c in report.checks) and not report.cpu_only
    assert report.gpus[0].memory_mib == 81920 and report.gpus[0].name.startswith("NVIDIA A100")
    assert (report.data_files, report.data_bytes) == (2, 300) and report.disk_mb_s > 1
    assert fakes.calls("nvidia-smi") == [list(health.NVIDIA_SMI[1:]), ["-q"]]
    assert fakes.calls("python3") == [["-c", health.MATMUL_SCRIPT, "cuda", "4096"]]
    saved = json.loads(Path(ctx.spec.paths.log_dir, "health.json").read_text())
    assert saved == json.loads(json.dumps(asdict(report)))
    assert not (ctx.mount / "cache" / health.PROBE_FILE).exists()


@pytest.mark.parametrize("csv, changes, words", [
    (A100_80, {"min_gpus": 2}, "gpu: 1 GPU(s), need >= 2 GPU(s)"),
    ("", {}, "gpu: 0 GPU(s)"),
    ("0, NVIDIA A10, 24564, 550.54", {"min_vram_gb": 40}, "GPU 0 has 24564 MiB, need >= 40 GB"),
    ("0, NVIDIA A100-PCIE-40GB, 40960, 550.54", {"min_vram_gb": 48}, "has 40960 MiB"),
    ("0, NVIDIA A100-SXM4-80GB, [N/A], 550.54", {}, "GPU 0 has [N/A]"),
    (A100_80, {"gpu_model": "H100"}, "GPU 0 is 'NVIDIA A100-SXM4-80GB', need model 'H100'"),
])
def test_gpu_checks_fail_naming_the_value_and_threshold(ctx_for, fakes, csv, changes, words):
    fakes.env["FAKE_NVSMI"] = csv
    reason = failure(ctx_for(**changes))
    assert words in reason
    assert fakes.calls("python3") == []  # the first failure stops the phase


@pytest.mark.parametrize("csv, min_vram_gb, model", [
    ("0, NVIDIA L40S, 46068, 550.54", 48, "NVIDIA_L40S"),   # ECC takes 1/16 on GDDR
    ("0, NVIDIA H100 80GB HBM3, 81559, 550.54", 80, "h100"),
    ("0, NVIDIA A100-SXM4-40GB, 40960, 550.54", 40, "NVIDIA_A100"),
    ("0, GRID A100D-2-20C, [N/A], 550.54", 0, ""),           # no VRAM demanded
    ("  0 ,  NVIDIA A100-SXM4-80GB  ,  81920  , 550.54  |1, NVIDIA A100-SXM4-80GB, 81920, 550.54",
     80, "A100"),
])
def test_gpu_checks_pass_within_the_documented_tolerance(ctx_for, fakes, csv, min_vram_gb,
                                                         model):
    fakes.env["FAKE_NVSMI"] = csv
    report = health.check(ctx_for(min_vram_gb=min_vram_gb, gpu_model=model), Manifest(), PROBE)
    assert report.checks[0].ok


def test_gpu_rows_parse_robustly():
    gpus = health.parse_gpus("0, Odd, Name, 1024 MiB, 1.0\n\n garbage \n1, X, [N/A], [N/A]\n")
    assert [(g.index, g.name, g.memory_mib, g.driver) for g in gpus] == [
        ("0", "Odd, Name", 1024, "1.0"), ("1", "X", None, "[N/A]")]
    assert health.vram_ok(46068, 48) and not health.vram_ok(40960, 48)
    assert not health.vram_ok(None, 1) and health.vram_ok(None, 0)


def test_a_broken_nvidia_smi_fails_the_gpu_check(ctx_for, fakes):
    fakes.env.update(FAKE_NVSMI="NVIDIA-SMI has failed because it couldn't communicate",
                     FAKE_NVSMI_EXIT="9")
    assert "gpu: nvidia-smi failed" in failure(ctx_for())


@pytest.mark.parametrize("mode, words", [("crash", "No module named 'torch'"),
                                         ("wrong", "max_rel_err"),
                                         ("garbage", "JSONDecodeError")])
def test_a_failed_matmul_fails_the_phase(ctx_for, fakes, mode, words):
    fakes.env["FAKE_MATMUL"] = mode
    reason = failure(ctx_for())
    assert reason.startswith("matmul: failed") and words in reason
    assert fakes.calls("dd") == []


def test_a_matmul_on_fewer_devices_than_required_fails(ctx_for, fakes):
    fakes.env["FAKE_NVSMI"] = A100_80 + "|" + A100_80.replace("0,", "1,", 1)
    fakes.env["FAKE_MATMUL_COUNT"] = "1"
    assert failure(ctx_for(min_gpus=2)).startswith("matmul:")


def test_the_matmul_script_prints_json_even_without_torch(tmp_path):
    done = subprocess.run([sys.executable, "-c", health.MATMUL_SCRIPT, "cpu", "64"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["device"] == "cpu"
    try:
        import torch  # noqa: F401
    except ImportError:
        assert done.returncode == 1 and not out["ok"] and "torch" in out["error"]
    else:
        assert done.returncode == 0 and out["ok"] and out["tflops"] > 0


def test_a_slow_disk_fails_naming_the_speed_and_threshold(ctx_for):
    ctx = ctx_for(min_disk_mb_s=1e9)
    reason = failure(ctx)
    assert reason.startswith("disk: ") and "MB/s" in reason and "need >= 1e+09 MB/s" in reason
    assert not (ctx.mount / "cache" / health.PROBE_FILE).exists()


def test_disk_probe_uses_direct_io_and_falls_back_where_refused(ctx_for, fakes):
    assert "O_DIRECT" in health.check(ctx_for(), Manifest(), PROBE).checks[2].measured
    assert "oflag=direct" in fakes.calls("dd")[0] and "bs=4194304" in fakes.calls("dd")[0]
    fakes.env["FAKE_DD"] = "nodirect"
    report = health.check(ctx_for(), Manifest(), PROBE)
    assert "(fsync)" in report.checks[2].measured and report.checks[2].ok


@pytest.mark.parametrize("manifest, words", [
    (Manifest(files=3), "data: 2 files, 300 bytes, need >= 3 files"),
    (Manifest(bytes=301), "need >= 2 files, >= 301 bytes"),
])
def test_missing_data_fails(ctx_for, manifest, words):
    assert words in failure(ctx_for(), manifest)


def test_a_missing_data_dir_fails_and_symlinks_are_not_counted(ctx_for, tmp_path):
    ctx = ctx_for()
    (ctx.mount / "data" / "shard" / "link").symlink_to("/etc/passwd")
    assert health.count_files(ctx.mount / "data", 100) == (2, 300, True)
    assert health.count_files(ctx.mount / "data", 2)[2] is False
    (ctx.mount / "data").rename(tmp_path / "elsewhere")
    assert "data: " in failure(ctx) and "missing" in failure(ctx)


def test_cpu_only_skips_the_gpu_says_so_loudly_and_multiplies_on_the_cpu(ctx_for, fakes):
    ctx = ctx_for(cpu_only=True, min_gpus=8)
    report = health.check(ctx, Manifest(), PROBE)
    assert report.cpu_only and asdict(report)["cpu_only"] is True
    assert fakes.calls("nvidia-smi") == []
    assert fakes.calls("python3") == [["-c", health.MATMUL_SCRIPT, "cpu", "512"]]
    assert health.CPU_ONLY_NOTE in ctx.reporter.snapshot()["notes"]
    assert "CPU-ONLY PROFILE" in Path(ctx.reporter.log_path).read_text()
    assert report.checks[0].measured == "skipped (cpu_only)"


def test_the_matmul_probe_gets_nothing_credential_like_from_the_runner_env(ctx_for, fakes):
    fakes.env.update(SOME_TOKEN="not-for-the-probe", B2_APP_KEY="neither", AWS_REGION="x",
                     CUDA_VISIBLE_DEVICES="0")
    health.check(ctx_for(), Manifest(), PROBE)
    [names] = fakes.env_names("python3")
    assert "PATH" in names and "CUDA_VISIBLE_DEVICES" in names
    assert not {"SOME_TOKEN", "B2_APP_KEY", "AWS_REGION"} & set(names)


def _with_requires(tmp_path, fakes, requires, python_env=None):
    from launcher.runner.spec import PythonEnv
    spec = make_spec(tmp_path, health={"min_disk_mb_s": 1.0, "min_vram_gb": 80,
                                       "matmul": python_env is not None},
                     python_env=PythonEnv(requires=requires))
    ctx = make_context(spec, fakes.env)
    ctx.python_env = python_env
    return ctx


def test_the_training_environment_satisfies_the_code_s_pins(ctx_for, tmp_path, fakes):
    ctx_for()  # the data and fake GPU
    real = replace(PROBE, python=sys.executable)
    report = health.check(_with_requires(tmp_path, fakes, ("pytest>=7", "PyYAML")),
                          Manifest(), real)
    assert [c.name for c in report.checks] == ["gpu", "python", "disk", "data"]
    python = report.checks[1]
    assert python.ok and "pytest " in python.measured and python.threshold == "pytest>=7, PyYAML"


@pytest.mark.parametrize("requires, words", [
    (("pytest>=999",), "pytest {} (needs pytest>=999)"),
    (("no-such-package-here>=1",), "no-such-package-here missing"),
])
def test_a_pin_the_environment_misses_fails_naming_both_versions(
        ctx_for, tmp_path, fakes, requires, words):
    ctx_for()
    import pytest as installed
    ctx = _with_requires(tmp_path, fakes, requires)
    with pytest.raises(PhaseFailed) as caught:
        health.check(ctx, Manifest(), replace(PROBE, python=sys.executable))
    assert words.format(installed.__version__) in caught.value.reason
    assert "python_env.install" in caught.value.reason


def test_the_env_phase_s_python_runs_the_probes(ctx_for, tmp_path, fakes):
    ctx_for()
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    python = bin_dir / "python3"  # records that it ran, then plays the GPU probe
    python.write_text(f'#!/bin/sh\necho "$3" >> {tmp_path}/venv-ran\nexec {FAKES}/python3 "$@"\n')
    python.chmod(0o755)
    venv = SimpleNamespace(python=str(python), path=bin_dir.parent)
    health.check(_with_requires(tmp_path, fakes, (), python_env=venv), Manifest(), PROBE)
    assert fakes.calls("python3") == [["-c", health.MATMUL_SCRIPT, "cuda", "4096"]]
    assert (tmp_path / "venv-ran").read_text().split() == ["cuda"]


A100_Q = ("GPU 00000000:06:00.0|    Product Name : NVIDIA A100-SXM4-80GB|"
          "    GPU Virtualization Mode|        Virtualization Mode : {mode}|")


def test_the_gpu_s_virtualization_mode_is_recorded(ctx_for, fakes):
    fakes.env["FAKE_NVSMI_Q"] = A100_Q.format(mode="Pass-Through")
    report = health.check(ctx_for(), Manifest(), PROBE)
    assert report.virtualization == ("Pass-Through",)
    assert report.checks[0].ok and report.checks[0].measured.endswith("(Pass-Through)")


def test_a_vgpu_without_the_grid_driver_fails_and_says_why(ctx_for, fakes):
    fakes.env["FAKE_NVSMI_Q"] = A100_Q.format(mode="VGPU")
    reason = failure(ctx_for())
    assert "Virtualization Mode VGPU: a vGPU" in reason and "image.supports_vgpu" in reason
    fakes.env["FAKE_NVSMI_Q"] = A100_Q.format(mode="VGPU")
    assert health.check(ctx_for(vgpu_driver=True), Manifest(), PROBE).checks[0].ok


def test_a_failing_nvidia_smi_names_the_vgpu_suspect(ctx_for, fakes):
    fakes.env["FAKE_NVSMI_EXIT"] = "9"
    assert "GRID driver" in failure(ctx_for())
