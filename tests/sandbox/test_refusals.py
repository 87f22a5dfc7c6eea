"""What a sandbox machine refuses to boot: the instance exists in the emulator (the API call
succeeded, as on Vultr), the machine is marked failed with its reason, and nothing runs."""

from __future__ import annotations

import dataclasses
import json

import pytest

from launcher.runner.spec import HealthSpec
from launcher.sandbox import ProcessHypervisor

from .conftest import SECRET_VALUES, Bed


def assert_refused(bed: Bed, instance_id: str, words: str) -> None:
    view = bed.hypervisor.wait(instance_id, 15)
    assert view.state == "failed", bed.diagnostics(instance_id)
    assert words in view.reason
    # Nothing ran but, for a spec refused once fetched, the bootstrap that fetched it.
    console = view.console.read_text() if view.console.exists() else ""
    assert view.pid is None and "supervise" not in console
    assert words in (view.sandbox / "refused.txt").read_text()
    assert any("REFUSED" in line and words in line for line in bed.log)
    assert instance_id in bed.emulator.state.instances  # nothing ran to delete it


def test_a_gpu_document_is_refused(make_bed):
    bed = make_bed()
    gpu = dataclasses.replace(HealthSpec(), cpu_only=False)
    run = bed.launch(health=gpu)
    assert_refused(bed, run.instance_id, "cpu_only")
    assert "no GPU" in bed.hypervisor.machine(run.instance_id).reason


def test_an_api_beyond_loopback_is_refused(make_bed):
    bed = make_bed()
    run = bed.launch(api_url="https://api.vultr.com/v2")
    assert_refused(bed, run.instance_id, "is not on 127.0.0.1")


def test_a_runner_other_than_the_pinned_one_never_runs_and_the_machine_removes_itself(
        make_bed):
    bed = make_bed()
    run = bed.launch(attach=False, tamper=True)
    view = bed.hypervisor.wait(run.instance_id, 30)
    assert view.state == "failed" and "the bootstrap failed (exit 1)" in view.reason
    assert bed.wait_gone(run), bed.diagnostics(run.instance_id)  # the fresh volume too
    console = view.console.read_text()
    assert "another file under that key" in console and "supervise" not in console
    status = json.loads(bed.fetch(f"runs/{run.spec.run_id}/status.json", bed.tmp))
    assert (status["state"], status["phase"], status["left_behind"]) == ("failed", "boot", [])
    assert not any(value in console for value in SECRET_VALUES)


def test_a_document_with_unknown_keys_is_refused(make_bed):
    bed = make_bed()
    run = bed.launch(user_data="#cloud-config\nbootcmd: [[touch, /x]]\nruncmd: [[true]]\n",
                     attach=False)
    assert_refused(bed, run.instance_id, "unknown cloud-config key(s): bootcmd")


def test_a_shell_script_is_refused(make_bed):
    bed = make_bed()
    run = bed.launch(user_data="#!/bin/sh\nrm -rf /\n", attach=False)
    assert_refused(bed, run.instance_id, "#cloud-config")


def test_root_cannot_be_the_trainer(sandbox_root):
    with pytest.raises(ValueError, match="uid 0"):
        ProcessHypervisor(sandbox_root, trainer_user="root")
    with pytest.raises(ValueError, match="does not exist"):
        ProcessHypervisor(sandbox_root, trainer_user="no-such-user-xyz")
