"""The operator, diffusion and full stages on the training repository as it is (UPS).

Each test renders a shipped stage the way ``launcher run`` does, fills the "volume" with the
real runner's data phase from an S3 bucket laid out as UPS's, links the code's ``reports/``
to the volume as the runner's code phase does, and runs the stage's argv exactly as
rendered — UPS's own ``scripts/run_fast_to_sota.py``, its argparse, config loader and
overrides, ``validate_config.py``, ``validate_data.py``, ``dry_run.py`` and ``train.py``
on the CPU — in the environment the runner gives the trainer. The only changes are the
launcher's own: the mount point is a temp folder, and each stage's ``ups.overrides`` shrink
the model and epochs to seconds of CPU (no compile, no AMP, batch 2 (x 8 accumulated: UPS's
validate_config.py wants an effective batch of 16 or more), 1 epoch).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from runner.bucket.conftest import make_context

from launcher.config import Account, resolve_stage
from launcher.render.stage import LaunchFacts, stage_run_spec
from launcher.runner import code, data
from launcher.runner.spec import Placement, RunSecrets, RunSpec
from launcher.runner.train import trainer_env
from launcher.runner.users import User

from .conftest import UPS_PYTHON, UPS_VENV, need, wandb_calls

# Each test trains UPS on the CPU through its own orchestrator: the full stage takes ~90 s on
# two loaded cores, too close to the suite's 120 s default (its subprocess has its own limit).
pytestmark = pytest.mark.timeout(600)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
NOW = 1_800_000_000.0
PLACEMENT = Placement(provider="vultr", region="sjc", plan="vcg-a100-1c-6g-80vram",
                      gpu_type="NVIDIA_A100", gpu_count=1, snapshot_id="snap-1",
                      snapshot_description="launcher-gpu-ubuntu2204-570-12.8-20261201",
                      git_sha="69e91614cc32590e8fa4537ad6ed49123e91ecd4")
# Seconds on a CPU instead of hours on a GPU; epochs of the stages a test trains are added.
TINY = {"training.compile": False, "training.amp": False, "training.num_workers": 0,
        "training.pin_memory": False, "training.use_parallel_encoding": False,
        "training.batch_size": 2, "training.accum_steps": 8}
EPOCHS = {"operator": {"stages.operator.epochs": 1},
          "diffusion": {"stages.diff_residual.epochs": 1},
          "full": {"stages.operator.epochs": 1, "stages.diff_residual.epochs": 1,
                   "stages.consistency_distill.epochs": 1}}


def config_dir(tmp: Path, mount: Path, **ups: object) -> Path:
    """The shipped configs with the volume mounted at ``mount``, tiny models, and ``ups``
    over launcher.yaml's ups section."""
    target = tmp / "configs"
    shutil.copytree(CONFIGS, target)
    defaults = yaml.safe_load((target / "launcher.yaml").read_text())
    defaults["volume"]["mount_point"] = str(mount)
    defaults["ups"].update(ups)
    (target / "launcher.yaml").write_text(yaml.safe_dump(defaults))
    for name, epochs in EPOCHS.items():
        path = target / "stages" / f"{name}.yaml"
        stage = yaml.safe_load(path.read_text())
        stage["ups"]["overrides"] = {**TINY, **epochs}
        path.write_text(yaml.safe_dump(stage))
    return target


def rendered(configs: Path, name: str, run_id: str, *, wandb_key: bool = True,
             entity: str = "ups-tests-team") -> RunSpec:
    account = Account(wandb_project="ups-launcher-tests", wandb_entity=entity)
    stage = resolve_stage(configs, name, account)
    stage = stage.for_profile(stage.gpu)
    facts = LaunchFacts(run_id=run_id, block_id="blk-1", mount_id="mnt-1",
                        placement=PLACEMENT, wandb_key=wandb_key)
    return stage_run_spec(stage, facts, NOW)


class Volume:
    """One "volume" (``<tmp>/mnt``), the bucket, and a UPS checkout per stage run."""

    def __init__(self, tmp: Path, s3_server, bucket: str, snapshot: Path, shim,
                 **ups: object) -> None:
        self.tmp, self.s3_server, self.bucket, self.snapshot = tmp, s3_server, bucket, snapshot
        self.mount = tmp / "mnt"
        self.configs = config_dir(tmp, self.mount, **ups)
        self.shim, self.calls = shim

    def run(self, name: str, run_id: str,
            *extra: str) -> tuple[RunSpec, subprocess.CompletedProcess]:
        spec = rendered(self.configs, name, run_id)
        fields = ("run_id", "stage", "command", "data_sources", "data_links", "code_links",
                  "wandb", "placement", "env", "upload_dirs")
        ctx = make_context(self.tmp, self.s3_server, self.bucket,
                           **{f: getattr(spec, f) for f in fields})
        assert ctx.mount == self.mount
        data.sync(ctx)
        checkout = self.tmp / f"code-{run_id}"
        shutil.copytree(self.snapshot, checkout)
        code.link_outputs(ctx, checkout)
        before = files_in(checkout)
        me = pwd.getpwuid(os.getuid())
        env = trainer_env(ctx.spec, RunSecrets({}), User(me.pw_name, me.pw_uid, me.pw_gid,
                                                          me.pw_dir),
                          path="/usr/bin:/bin", venv=UPS_VENV)
        env.update(PYTHONPATH=str(self.shim), UPS_TEST_WANDB_CALLS=str(self.calls))
        # --skip-analysis: after training, UPS reads the run back from W&B's servers.
        done = subprocess.run([*spec.command, "--skip-analysis", *extra], cwd=checkout,
                              env=env, timeout=900, capture_output=True, text=True)
        log = self.tmp / f"{run_id}.log"
        log.write_text(done.stdout + done.stderr)
        assert done.returncode == 0, f"exit {done.returncode}; see {log}:\n{done.stderr[-3000:]}"
        new = sorted(set(files_in(checkout)) - set(before))
        assert new == [], f"UPS wrote into its code folder, not the volume: {new[:10]}"
        return spec, done


def files_in(root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in root.rglob("*")
            if "__pycache__" not in p.parts and not p.is_dir()]


@pytest.fixture
def volume(tmp_path, s3_server, ups_bucket, ups_snapshot, wandb_shim) -> Volume:
    need(UPS_PYTHON.is_file(), "make ups-env")
    return Volume(tmp_path, s3_server, ups_bucket, ups_snapshot, wandb_shim)


def resolved(volume: Volume, run_id: str) -> dict:
    path = volume.mount / "reports" / "fast_to_sota" / run_id / "configs" / "train_resolved.yaml"
    return yaml.safe_load(path.read_text())


def metadata(volume: Volume) -> dict:
    return json.loads((volume.mount / "checkpoints" / "metadata.json").read_text())


def check_resolved(volume: Volume, spec: RunSpec, trains: dict[str, int]) -> None:
    """What UPS resolved is what the launcher meant: paths on the volume, W&B, epochs."""
    cfg = resolved(volume, spec.run_id)
    mount = str(volume.mount)
    assert cfg["data"]["root"] == f"{mount}/data/pdebench"
    assert cfg["checkpoint"]["dir"] == f"{mount}/checkpoints"
    assert cfg["training"]["latent_cache_dir"] == f"{mount}/cache/latent_cache"
    assert {k: cfg["stages"][k]["epochs"] for k in trains} == trains
    wandb_cfg = cfg["logging"]["wandb"]
    assert wandb_cfg["group"] == wandb_cfg["run_name"] == spec.run_id
    assert wandb_cfg["project"] == "ups-launcher-tests"
    assert wandb_cfg["entity"] == "ups-tests-team"
    assert "environment=vultr" in wandb_cfg["tags"] and "region=sjc" in wandb_cfg["tags"]


def test_operator_then_diffusion_on_one_volume_train_both(volume):
    op_spec, op_run = volume.run("operator", "operator-20270115-080000")
    check_resolved(volume, op_spec, {"operator": 1, "diff_residual": 0,
                                     "consistency_distill": 0, "steady_prior": 0})
    assert "[validate-data]" in op_run.stdout and "All data validation checks PASSED" in \
        op_run.stdout
    checkpoints = volume.mount / "checkpoints"
    assert (checkpoints / "operator.pt").is_file()
    assert not (checkpoints / "diffusion_residual.pt").exists()
    first = metadata(volume)
    assert first["trained"] is True
    time.sleep(1.1)  # trained_at has whole seconds

    diff_spec, diff_run = volume.run("diffusion", "diffusion-20270115-090000")
    check_resolved(volume, diff_spec, {"operator": 0, "diff_residual": 1,
                                       "consistency_distill": 0, "steady_prior": 0})
    assert "Skipping training" not in diff_run.stdout  # --force-train beat trained: true
    assert "Training Diffusion Residual" in diff_run.stdout
    assert (checkpoints / "diffusion_residual.pt").is_file()
    assert metadata(volume)["trained_at"] > first["trained_at"]
    # One W&B run per stage, with the launcher's tags, group and project.
    calls = wandb_calls(volume.calls)
    assert [c["group"] for c in calls] == [op_spec.run_id, diff_spec.run_id]
    for call, spec in zip(calls, (op_spec, diff_spec), strict=True):
        assert call["project"] == "ups-launcher-tests" and call["entity"] == "ups-tests-team"
        assert call["name"] == spec.run_id
        assert {"environment=vultr", "region=sjc", "plan=vcg-a100-1c-6g-80vram",
                "gpu=NVIDIA_A100", f"stage={spec.stage}",
                "git_sha=69e91614cc32590e8fa4537ad6ed49123e91ecd4"} <= set(call["tags"])
    # UPS's own outputs beside its code went to the volume through the reports link.
    assert (volume.mount / "reports" / "fast_to_sota" / op_spec.run_id / "summary.json").is_file()
    offline = list((volume.mount / "wandb").glob("wandb/offline-run-*"))
    assert len(offline) == 2, sorted(p.name for p in (volume.mount / "wandb").rglob("*"))[:20]


def test_the_full_stage_trains_every_stage_and_evaluates(volume):
    spec, run = volume.run("full", "full-20270115-100000", "--eval-device", "cpu")
    check_resolved(volume, spec, {"operator": 1, "diff_residual": 1, "consistency_distill": 1})
    assert "--skip-small-eval" not in spec.command and "--skip-full-eval" not in spec.command
    assert (volume.mount / "checkpoints" / "diffusion_residual.pt").is_file()
    assert "evaluate-small" in run.stdout


def test_without_a_wandb_key_ups_trains_without_w_and_b(tmp_path):
    configs = config_dir(tmp_path, tmp_path / "mnt")
    spec = rendered(configs, "operator", "operator-20270115-110000", wandb_key=False,
                    entity="")
    argv = list(spec.command)
    assert argv[argv.index("--wandb-mode") + 1] == "offline"
    # W&B as the config says: UPS's login fails at once without a key (no request), and its
    # validate_config.py refuses enabled: false; the runner is told W&B is off.
    assert not any(a.startswith("logging.wandb.enabled=") for a in argv)
    assert "--skip-validation" not in argv and spec.wandb.mode == "disabled"
    with_key = rendered(configs, "operator", "operator-20270115-110000", wandb_key=True)
    assert "logging.wandb.enabled=true" in with_key.command
    # No entity set: the config's own stays (UPS's validate_config.py refuses a null one).
    assert not any(a.startswith("logging.wandb.entity=") for a in argv)


def test_a_prepared_latent_cache_is_synced_to_the_trainer_and_used(volume, tmp_path):
    volume.run("operator", "operator-20270115-130000")
    made = volume.mount / "cache" / "latent_cache" / "burgers1d_train"
    samples = sorted(made.glob("sample_*.pt"))
    assert samples, "UPS encoded no latent cache"
    for sample in samples:  # publish it as UPS's preprocessing would
        volume.s3_server.put(volume.bucket, f"latent_caches/v1/burgers1d_train/{sample.name}",
                             sample)
    fresh = Volume(tmp_path / "second", volume.s3_server, volume.bucket, volume.snapshot,
                   (volume.shim, volume.calls), cache_version="v1",
                   cache_include=["burgers1d_train/*"])
    spec, run = fresh.run("operator", "operator-20270115-140000")
    cached = fresh.mount / "data" / "latent_cache" / "v1"
    assert resolved(fresh, spec.run_id)["training"]["latent_cache_dir"] == str(cached)
    assert sorted(p.name for p in (cached / "burgers1d_train").iterdir()) == \
        [p.name for p in samples]
    assert "Using PreloadedCacheDataset for burgers1d_train" in run.stdout
    assert spec.data_sources[-1].writable  # the trainer owns it (train.py's hand-over)


def test_validate_data_accepts_every_split_the_data_phase_leaves(volume):
    spec = rendered(volume.configs, "operator", "operator-20270115-120000")
    ctx = make_context(volume.tmp, volume.s3_server, volume.bucket,
                       data_sources=spec.data_sources, data_links=spec.data_links)
    data.sync(ctx)
    root = volume.mount / "data" / "pdebench"
    assert sorted(p.name for p in root.iterdir()) == [
        "burgers1d_test.h5", "burgers1d_train.h5", "burgers1d_val.h5"]
    done = subprocess.run([str(UPS_PYTHON), "scripts/validate_data.py", "--data-root", str(root),
                           "--task", "burgers1d", "--all-splits"], cwd=volume.snapshot,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
    assert done.stdout.count("✅ Valid HDF5") == 3


