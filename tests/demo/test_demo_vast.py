"""The offline demo on Vast.ai (``launcher demo --provider vast``, ``make demo
PROVIDER=vast``): the same walk as on Vultr, typed with ``--provider vast``, against a Vast
emulator whose instances are sandbox containers running the onstart, and the same local
bucket. The end-to-end test runs the real ``launcher run --provider vast``."""

from __future__ import annotations

import json
import subprocess

import pytest
import requests
from support.demo import CONFIGS, EXAMPLE, ROOT, needs_weed
from support.demo import FAKE_DEMO_KEYS as FAKE_KEYS
from support.keys import FAKE_VAST_KEY

from launcher.cli import main
from launcher.demo import DemoBed, DemoKeys
from launcher.demo.bed import demo_timing
from launcher.emulator import Timing
from launcher.emulator.vast import VastTiming
from launcher.errors import ConfigError

PHASES = ["harden", "volume", "code", "env", "data", "health", "train", "upload", "teardown"]


@needs_weed
def test_the_vast_demo_runs_the_stage_end_to_end_and_leaves_nothing(monkeypatch, capsys):
    monkeypatch.setattr(DemoKeys, "fresh", classmethod(lambda cls: FAKE_KEYS))
    argv = ["demo", "--provider", "vast", "--instant", "--json", "--example-dir",
            str(EXAMPLE), "--config-dir", str(CONFIGS)]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.out[-3000:] + captured.err[-3000:]
    report = json.loads(captured.out)
    run = report["run_id"]
    assert report["provider"] == "vast" and report["state"] == "succeeded", report
    assert [p.split()[0] for p in report["phases"]] == PHASES
    assert report["phases"][-1].endswith("(instance destroyed)")
    for key in ("status.json", "manifest.json", "logs/train.log", "reports/report.json",
                "checkpoints/step-400.json"):
        assert f"runs/{run}/{key}" in report["artifacts"], sorted(report["artifacts"])
    # after the create, the container's only call: destroy (never stop) with its own key
    assert [line.split(" /api/v0/")[0] for line in report["self_destruct"]] == ["DELETE"]
    assert [c["argv"][:3] for c in report["commands"]][1] == ["run", "--provider", "vast"]
    assert [c["argv"][0] for c in report["commands"]] == [
        "offers", "run", "status", "status", "logs", "gc"]
    assert report["left"] == {"instances": 0, "machines": 0} and report["left_over"] == 0
    assert not [k for k in FAKE_KEYS.values() if k in captured.out + captured.err]


@needs_weed
def test_the_vast_bed_speaks_vast_only_and_counts_a_stopped_instance_as_left(monkeypatch):
    monkeypatch.setenv("VULTR_KEY", "a-users-own-vultr-key-0000")
    monkeypatch.setenv("VAST_API_KEY", "a-users-own-vast-key-0000")
    with DemoBed.open(EXAMPLE, CONFIGS, FAKE_KEYS, VastTiming.instant(), machines=False,
                      provider="vast") as bed:
        env = bed.env()
        assert not [k for k in env if k.startswith("VULTR_")]
        assert env["VAST_API_KEY"] == FAKE_VAST_KEY
        assert env["VAST_API_URL"] == bed.emulator.url
        assert env["VAST_API_URL"].startswith("http://127.0.0.1:")
        assert env["VAST_API_URL"].endswith("/api/v0")
        assert bed.left() == {"instances": 0, "machines": 0}
        api = bed.emulator.url
        auth = {"Authorization": f"Bearer {FAKE_VAST_KEY}"}
        offer = min(bed.emulator.state.offers)
        made = requests.put(f"{api}/asks/{offer}/", json={"image": "pytorch/pytorch",
                            "disk": 16, "label": "demo-left"}, headers=auth, timeout=10)
        iid = made.json()["new_contract"]
        stopped = requests.put(f"{api}/instances/{iid}/", json={"state": "stopped"},
                               headers=auth, timeout=10)
        assert stopped.status_code == 200
        assert bed.left() == {"instances": 1, "machines": 0}  # stopped: still billing
        assert requests.delete(f"{api}/instances/{iid}/", headers=auth,
                               timeout=10).status_code == 200
        assert bed.left() == {"instances": 0, "machines": 0}
        assert bed.emulator.bill(iid).destroyed
    assert not bed.root.exists()


def test_the_demo_timing_is_the_providers():
    assert demo_timing("vast", instant=True) == VastTiming.instant()
    assert demo_timing("vast", instant=False) == VastTiming.realistic()
    assert isinstance(demo_timing("vultr", instant=True), Timing)


def test_the_demo_refuses_a_provider_it_has_no_cloud_for(tmp_path, capsys):
    with pytest.raises(ConfigError, match="vultr or vast"):
        DemoBed(tmp_path, FAKE_KEYS, "aws")
    assert main(["demo", "--provider", "all", "--example-dir", str(EXAMPLE)]) == 2
    assert "--provider all" in capsys.readouterr().err


def test_the_fresh_keys_carry_a_vast_key_kept_out_of_repr():
    keys = DemoKeys.fresh()
    assert len(keys.vast.reveal()) >= 32 and keys.vast.reveal() in keys.values()
    assert keys.vast.reveal() not in repr(keys)


@pytest.mark.parametrize(("provider", "typed"), [(None, "--provider vultr"),
                                                 ("vast", "--provider vast")])
def test_make_demo_passes_the_provider(provider, typed):
    argv = ["make", "-n", "-s", "demo"] + ([f"PROVIDER={provider}"] if provider else [])
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert f"launcher demo {typed}" in done.stdout


@needs_weed
def test_make_demo_provider_vast_at_realistic_timing_ends_with_nothing_left(monkeypatch,
                                                                           capsys):
    """``make demo PROVIDER=vast``: the emulator's realistic timing (running after 3 s); the
    container starts then, and the tiny run may end before the launcher's next poll."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(DemoKeys, "fresh", classmethod(lambda cls: FAKE_KEYS))
    code = main(["demo", "--provider", "vast"])
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    for typed in ("$ launcher offers --provider vast --stage example",
                  "$ launcher run --provider vast --stage example --yes",
                  "$ launcher status --provider vast demo-", "$ launcher logs --provider vast",
                  "$ launcher gc --provider vast"):
        assert typed in out
    assert "emulated Vast.ai API: http://127.0.0.1:" in out
    assert out.rstrip().splitlines()[-1].startswith("0 resources left (0 instances, "
                                                    "0 machines)")
    assert not [k for k in FAKE_KEYS.values() if k in out]
