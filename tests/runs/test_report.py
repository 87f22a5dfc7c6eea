"""``launcher report vultr-vs-vast``: runs written into the test bucket as the runner leaves
them (manifest, status, train log, UPS's epoch log), live offers from the Vultr and Vast
emulators; every figure on the page is one the records hold, the rest "not recorded"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.keys import ALL_FAKE_KEYS, FAKE_VAST_KEY

from launcher.cli import main
from launcher.emulator.vast import VastEmulator, VastTiming
from launcher.operate.report_logs import throughput
from launcher.operate.report_md import MARKER
from launcher.timefmt import parse_time

VULTR_RUN = "operator-20261201-100000"
VAST_RUN = "smoke-20261202-120000"
FAILED_RUN = "smoke-20261203-120000"
BARE_RUN = "operator-20261204-100000"
PAGE = Path("reports/vultr_vs_vast.md")

UPS_LOG = """=== 2026-12-01T10:05:01Z launcher: ["python", "scripts/run_fast_to_sota.py"] as trainer
[train] python scripts/train.py --config configs/train.yaml --stage all
[TRAIN-DEBUG] About to start training loop: epochs=2, rank=0
[TRAIN-DEBUG] Starting epoch 1/2 on rank 0
[TRAIN-DEBUG] Finished epoch 1 on rank 0: processed 100 batches, batch_count=100
[TRAIN-DEBUG] Starting epoch 2/2 on rank 0
[TRAIN-DEBUG] Finished epoch 2 on rank 0: processed 140 batches, batch_count=140
Saved operator checkpoint to /mnt/cache/checkpoints/operator.pt
"""
EPOCH_LOG = "\n".join(json.dumps(e) for e in (
    {"stage": "operator", "loss": 0.9, "epoch": 0, "global_step": 1, "epoch_time_sec": 50.0},
    {"stage": "operator", "loss": 0.5, "epoch": 1, "global_step": 2, "epoch_time_sec": 70.0},
    {"stage": "diffusion_residual", "loss": 0.3, "epoch": 0, "epoch_time_sec": 30.0},
    {"stage": "diffusion_residual", "loss": 0.2, "epoch": 1, "epoch_time_sec": 40.0})) + "\n"
EXAMPLE_LOG = (f"=== 2026-12-02T12:03:00Z launcher: [\"python\", \"train.py\"] as trainer\n"
               f"run {VAST_RUN}: 64 rows, starting at step 0\n"
               "step 50: loss 0.120000 w 1.9000 b 0.9000\nstep 200: loss 0.000100 w 2.0000 "
               'b 1.0000\ndone: {"step": 200, "w": 2.0, "b": 1.0, "loss": 0.0001, "rows": 64, '
               '"seconds": 4.0, "stopped_early": false}\n')


def epoch(text: str) -> float:
    value = parse_time(text)
    assert value is not None
    return value


def phases(day: str, names: list[tuple[str, str, str, bool]]) -> list[dict]:
    return [{"name": n, "started": f"{day}T{a}Z", "ended": f"{day}T{b}Z", "seconds": 1.0,
             "ok": ok, "detail": "" if ok else "s5cmd sync: exit status 1"}
            for n, a, b, ok in names]


def placement(provider: str, region: str, plan: str, gpu: str, count: int,
              usd: float | None = None, launched: str = "") -> dict:
    out = {"provider": provider, "region": region, "plan": plan, "gpu_type": gpu,
           "gpu_count": count, "snapshot_id": "", "snapshot_description": "", "git_sha": "abc"}
    if usd is not None:
        out["usd_per_hour"] = usd
    if launched:
        out["launched_epoch"] = epoch(launched)
    return out


def run_files(run_id: str, place: dict, steps: list[dict], *, state: str, exit_code,
              started: str, ended: str) -> dict[str, str]:
    manifest = {"run_id": run_id, "stage": run_id.rsplit("-", 2)[0], "placement": place,
                "command": ["python", "train.py"], "exit_code": exit_code, "reason": "",
                "state": state, "phases": [p for p in steps if p["name"] != "teardown"],
                "notes": [], "started": started, "ended": ended, "deadline_epoch": 0}
    status = {"run_id": run_id, "state": state, "phase": steps[-1]["name"], "phases": steps,
              "reason": "", "left_behind": [], "notes": [], "updated": steps[-1]["ended"]}
    return {"manifest.json": json.dumps(manifest), "status.json": json.dumps(status)}


def standard_runs() -> dict[str, dict[str, str]]:
    day1, day2, day3, day4 = "2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04"
    vultr = run_files(VULTR_RUN, placement("vultr", "sea", "vcg-a100-12c-120g-80vram",
                                           "NVIDIA_A100", 1, 2.604, f"{day1}T10:00:00Z"),
                      phases(day1, [("data", "10:03:00", "10:05:00", True),
                                    ("train", "10:05:00", "11:05:00", True),
                                    ("upload", "11:05:00", "11:06:00", True),
                                    ("teardown", "11:06:00", "11:07:00", True)]),
                      state="succeeded", exit_code=0, started=f"{day1}T10:03:00Z",
                      ended=f"{day1}T11:06:00Z")
    vultr |= {"logs/train.log": UPS_LOG, "reports/training_log.jsonl": EPOCH_LOG}
    vast = run_files(VAST_RUN, placement("vast", "US", "4242", "RTX 4090", 1, 0.45,
                                         f"{day2}T12:00:00Z"),
                     phases(day2, [("data", "12:02:00", "12:03:00", True),
                                   ("train", "12:03:00", "12:04:00", True),
                                   ("upload", "12:04:00", "12:05:00", True),
                                   ("teardown", "12:05:00", "12:30:00", True)]),
                     state="succeeded", exit_code=0, started=f"{day2}T12:02:00Z",
                     ended=f"{day2}T12:05:00Z")
    vast["logs/train.log"] = EXAMPLE_LOG
    failed = run_files(FAILED_RUN, placement("vast", "CA", "5151", "A100 SXM4", 2, 2.2,
                                             f"{day3}T12:00:00Z"),
                       phases(day3, [("data", "12:06:00", "12:12:00", False)]),
                       state="failed", exit_code=None, started=f"{day3}T12:06:00Z",
                       ended=f"{day3}T12:12:00Z")
    bare = run_files(BARE_RUN, placement("vultr", "sjc", "vcg-a100-12c-120g-80vram",
                                         "NVIDIA_A100", 1),
                     phases(day4, [("train", "10:05:00", "10:35:00", True)]),
                     state="succeeded", exit_code=0, started=f"{day4}T10:01:00Z",
                     ended=f"{day4}T10:40:00Z")
    bare["logs/train.log"] = UPS_LOG
    return {VULTR_RUN: vultr, VAST_RUN: vast, FAILED_RUN: failed, BARE_RUN: bare}


@pytest.fixture
def vast():
    with VastEmulator(api_key=FAKE_VAST_KEY, timing=VastTiming.instant()) as emu:
        yield emu


@pytest.fixture
def report_env(cli_env, vast, monkeypatch, s3_server, bucket, tmp_path):
    """Both emulators and the bucket, holding the four standard runs."""
    monkeypatch.setenv("VAST_API_URL", vast.url)
    monkeypatch.setenv("VAST_API_KEY", FAKE_VAST_KEY)
    staging = tmp_path / "staging"
    for run_id, files in standard_runs().items():
        for name, text in files.items():
            path = staging / run_id / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    s3_server.s5("cp", f"{staging}/*", f"s3://{bucket}/runs/")
    return vast


def report(capsys, *extra: str) -> tuple[str, dict, str]:
    assert main(["report", "vultr-vs-vast", "--min-vram", "40", "--json", *extra]) == 0
    out, err = capsys.readouterr()
    return PAGE.read_text(), json.loads(out), err


def row(page: str, run_id: str) -> str:
    return next(line for line in page.splitlines() if line.startswith(f"| {run_id} |"))


def test_every_recorded_figure_is_on_the_page(report_env, capsys):
    page, data, err = report(capsys)
    assert page.startswith(MARKER + "\n")
    assert page.index("### Vultr") < page.index(VULTR_RUN) < page.index("### Vast.ai") \
        < page.index(VAST_RUN)
    vultr = row(page, VULTR_RUN)
    # $2.604/h × 67 min (launch 10:00 to teardown's end 11:07) = $2.91
    for figure in ("1 × NVIDIA_A100", "| sea |", "$2.604", "| 5 min |",
                   "operator: 2.00 batches/s, 60.0 s/epoch (2 epochs)",
                   "diffusion_residual: 35.0 s/epoch (2 epochs)", "| ups |", "1 h 03 min",
                   "≥ $2.91 (1.12 h)", "succeeded, exit 0"):
        assert figure in vultr, figure
    vast = row(page, VAST_RUN)
    for figure in ("1 × RTX 4090", "| US |", "$0.450", "| 3 min |",
                   "50.00 steps/s (200 steps)", "| example |", "≥ $0.23 (0.50 h)"):
        assert figure in vast, figure
    by_id = {r["run_id"]: r for r in data["runs"]}
    assert by_id[VULTR_RUN]["launch_to_train_s"] == 300.0
    assert by_id[VAST_RUN]["throughput"]["steps_per_s"] == 50.0
    assert data["runs_found"] == 4 and not data["runs_capped"]
    assert "Traceback" not in err


def test_a_failed_run_names_its_phase(report_env, capsys):
    page, data, _ = report(capsys)
    failed = row(page, FAILED_RUN)
    assert "2 × A100 SXM4" in failed and "| CA |" in failed
    assert "failed, exit code not recorded, failed in data: s5cmd sync: exit status 1" in failed
    assert "not recorded (logs/train.log is not in the bucket)" in failed
    assert "launch → train" in page and "| not recorded |" in failed  # no train phase
    assert {r["run_id"]: r["failed_phase"] for r in data["runs"]}[FAILED_RUN] == "data"


def test_missing_figures_say_not_recorded(report_env, capsys):
    page, data, _ = report(capsys)
    bare = row(page, BARE_RUN)
    assert "$" not in bare.split("|")[5] and bare.split("|")[5].strip() == "not recorded"
    assert "not recorded (UPS prints no time on its epoch lines" in bare
    assert "not recorded (no $/h, no launch time)" in bare
    assert "| 39 min |" in bare  # wall time is recorded
    figures = {r["run_id"]: r for r in data["runs"]}[BARE_RUN]
    assert figures["usd_per_hour"] is None and figures["cost_usd_at_least"] is None
    assert " 0.00" not in bare and "$0 " not in bare


def test_live_offers_of_both_clouds(report_env, capsys):
    page, data, _ = report(capsys)
    offers = {o["provider"]: o for o in data["offers"]}
    assert set(offers) == {"vultr", "vast"}
    for offer in offers.values():
        assert offer["problem"] is None and offer["usd_per_hour"] > 0 and offer["fitting"] >= 1
        assert f"${offer['usd_per_hour']:,.3f}" in page
        assert f"${offer['usd_per_hour'] / offer['gpu_count']:,.3f}" in page
    assert offers["vast"]["region"] == "US"
    section = page.split("## Live offers now")[1]
    assert "≥ 40 GB each" in section and "(the flags given)" in section


def test_a_cloud_without_a_key_is_said_and_the_page_still_written(report_env, monkeypatch,
                                                                 capsys):
    monkeypatch.delenv("VAST_API_KEY")
    page, data, _ = report(capsys)
    assert "| vast | unavailable: VAST_API_KEY is not set" in page
    assert {o["provider"]: o["problem"] for o in data["offers"]}["vultr"] is None


def test_runs_chooses_and_no_secret_leaks(report_env, capsys):
    page, data, err = report(capsys, "--runs", f"{VAST_RUN},{FAILED_RUN}")
    assert [r["run_id"] for r in data["runs"]] == [VAST_RUN, FAILED_RUN]
    assert "### Vultr" not in page
    assert "| vast | 2 | 1 |" in page  # comparison: two Vast runs, one succeeded
    shown = page + json.dumps(data) + err
    assert [k for k in ALL_FAKE_KEYS if k in shown] == []


def test_newest_runs_first(report_env, capsys):
    _, data, _ = report(capsys)
    assert [r["run_id"] for r in data["runs"]] == [BARE_RUN, FAILED_RUN, VAST_RUN, VULTR_RUN]


def test_a_file_it_did_not_write_is_kept_unless_forced(report_env, capsys):
    PAGE.parent.mkdir()
    PAGE.write_text("my notes\n")
    assert main(["report", "vultr-vs-vast", "--min-vram", "40"]) == 2
    assert "was not written by this command" in capsys.readouterr().err
    assert PAGE.read_text() == "my notes\n"
    report(capsys, "--force")
    report(capsys)  # its own page is replaced without --force
    assert PAGE.read_text().startswith(MARKER)


def test_without_a_bucket_the_page_says_so(report_env, monkeypatch, capsys):
    for name in ("B2_BUCKET", "B2_S3_ENDPOINT"):
        monkeypatch.delenv(name)
    page, data, _ = report(capsys)
    assert "The runs could not be read: bucket not configured" in page
    assert data["runs"] == [] and len(data["offers"]) == 2


# -- the log parsers alone -------------------------------------------------------------------

def test_ups_needs_its_epoch_log_for_time():
    alone = throughput(UPS_LOG, None)
    assert alone.parser == "ups" and alone.stages == () and "no time" in alone.missing
    both = throughput(UPS_LOG, EPOCH_LOG)
    operator = both.stages[0]
    assert (operator.stage, operator.epochs, operator.seconds_per_epoch,
            operator.batches_per_s) == ("operator", 2, 60.0, 2.0)


def test_ups_batches_only_when_the_epochs_match():
    one_epoch = UPS_LOG.split("[TRAIN-DEBUG] Starting epoch 2/2")[0]
    rate = throughput(one_epoch, EPOCH_LOG).stages[0]
    assert rate.batches_per_s is None and rate.seconds_per_epoch == 60.0


def test_example_without_done_cannot_time_its_steps():
    unfinished = EXAMPLE_LOG.split("done:")[0]
    result = throughput(unfinished, None)
    assert result.parser == "example" and result.steps_per_s is None
    assert result.steps == 200 and "no `done:` line" in result.missing


def test_an_unknown_trainer_matches_no_parser():
    result = throughput("hello\nworld\n", None)
    assert result.parser == "none" and "no line of a known trainer" in result.missing
    assert throughput(None, None).missing == "logs/train.log is not in the bucket"
