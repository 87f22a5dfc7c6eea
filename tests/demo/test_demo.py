"""The offline demo (README's first command) end to end, with the suite's fake keys so the
suite-wide scan would catch any of them in its output: the real commands launch the example
stage, the runner trains and uploads to the local S3 server, the instance deletes its volume
and itself, gc finds nothing, and nothing is left."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support.demo import CONFIGS, EXAMPLE, ROOT, needs_weed
from support.demo import FAKE_DEMO_KEYS as FAKE_KEYS

from launcher.cli import main
from launcher.demo import DemoBed, DemoKeys

PHASES = ["harden", "volume", "code", "env", "data", "health", "train", "upload", "teardown"]


@needs_weed
def test_make_demo_runs_a_stage_end_to_end_and_leaves_nothing(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(DemoKeys, "fresh", classmethod(lambda cls: FAKE_KEYS))
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    for typed in ("$ launcher offers --stage example", "$ launcher run --stage example --yes",
                  "$ launcher status demo-", "$ launcher logs demo-", "$ launcher gc"):
        assert typed in out
    assert "▶ run would pick" in out and "worst case" in out  # selection and the estimate
    assert "done: {" in out  # the training log, read back from the bucket
    assert "Nothing to collect" in out
    assert out.rstrip().splitlines()[-1].startswith("0 resources left (0 instances, "
                                                    "0 volumes, 0 machines)")
    assert not [k for k in FAKE_KEYS.values() if k in out]


@needs_weed
def test_the_report_shows_every_phase_the_artifacts_and_the_self_destruct(monkeypatch,
                                                                          capsys):
    monkeypatch.setattr(DemoKeys, "fresh", classmethod(lambda cls: FAKE_KEYS))
    argv = ["demo", "--instant", "--json", "--example-dir", str(EXAMPLE),
            "--config-dir", str(CONFIGS)]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    run = report["run_id"]
    assert report["state"] == "succeeded", report
    assert [p.split()[0] for p in report["phases"]] == PHASES
    assert all(" ok " in p for p in report["phases"]), report["phases"]
    assert report["phases"][-1].startswith("teardown ok ")  # not "failed": it succeeded
    for key in ("status.json", "manifest.json", "code.tar.gz", "logs/train.log",
                "logs/runner.log", "reports/report.json", "checkpoints/step-400.json"):
        assert f"runs/{run}/{key}" in report["artifacts"], sorted(report["artifacts"])
    assert [line.split(" /v2/")[0] for line in report["self_destruct"]] == [
        "POST", "DELETE", "DELETE"]  # detach, delete volume, delete instance: the runner's
    assert report["self_destruct"][-1].startswith("DELETE /v2/instances/")
    assert [c["argv"][0] for c in report["commands"]] == [
        "offers", "run", "status", "status", "logs", "gc"]
    assert all(c["exit_code"] == 0 for c in report["commands"])
    assert report["left"] == {"instances": 0, "volumes": 0, "machines": 0}
    assert report["left_over"] == 0
    assert report["mutating_calls"] == 6  # 3 by `launcher run`, 3 by the instance


def test_a_demo_started_away_from_the_checkout_says_what_is_missing(tmp_path, capsys):
    assert main(["demo", "--example-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path}/train.py not found" in err and "--example-dir" in err
    assert main(["demo", "--example-dir", str(EXAMPLE), "--config-dir", str(tmp_path)]) == 2
    assert "stages/example.yaml not found" in capsys.readouterr().err


@needs_weed
def test_the_bed_stops_every_process_and_removes_its_directory():
    bed = DemoBed.open(EXAMPLE, CONFIGS, FAKE_KEYS)
    pids, root = [bed.s3.pid], bed.root
    assert bed.emulator.url.startswith("http://127.0.0.1:")
    env = bed.env()
    assert env["B2_S3_ENDPOINT"].startswith("http://127.0.0.1:")
    assert Path(env["LAUNCHER_ENV_FILE"]).read_text() == ""  # no user .env is read
    bed.close()
    assert not root.exists()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
