"""The Vast emulator driving the container sandbox: an instance created through the API with
a rendered onstart boots for real, the runner trains the example stage, uploads to the local
S3 server and destroys its own instance through the emulator with its per-instance key; the
emulator then holds nothing and the bill says destroyed, never stopped. A failed training
still uploads then destroys; a destroy from outside (the launcher's teardown) stops the
container's processes."""

from __future__ import annotations

import json

import requests
from support.keys import FAKE_VAST_KEY

from launcher.emulator.vast.state import key_name
from launcher.runner.statefiles import alive

from .conftest import EXAMPLE_COMMAND, RUN_ID, VastGlue

PHASES = ["harden", "volume", "code", "env", "data", "health", "train", "upload", "teardown"]


def own_calls(glue: VastGlue, iid: int) -> list[str]:
    """The mutating calls the container made with its own key."""
    return [f"{e.method} {e.path} → {e.status}" for e in glue.emulator.events
            if e.mutating and e.key == key_name(iid)]


def assert_destroyed_never_stopped(glue: VastGlue, iid: int) -> None:
    assert glue.emulator.state.listed() == []
    bill = glue.emulator.bill(iid)
    assert bill.destroyed and bill.total_usd >= 0
    stops = [e for e in glue.emulator.events
             if e.method == "PUT" and e.path.endswith(f"/instances/{iid}/")]
    assert stops == []  # destroyed, never stopped (a stopped instance keeps billing)


def test_the_example_stage_trains_uploads_and_destroys_its_own_instance(vast_glue):
    glue: VastGlue = vast_glue()
    iid = glue.create(glue.spec())
    view = glue.sandbox.wait_onstart(str(iid), 60)
    assert (view.state, view.onstart_exit) == ("running", 0), glue.diagnostics(iid)
    assert glue.wait_gone(iid), glue.diagnostics(iid)

    assert own_calls(glue, iid) == [f"DELETE /api/v0/instances/{iid}/ → 200"]
    assert_destroyed_never_stopped(glue, iid)
    container = json.loads((glue.sandbox.root / str(iid) / "container.json").read_text())
    assert container["api_url"] == glue.emulator.url and container["label"] == RUN_ID
    assert container["env_names"] == ["B2_APP_KEY", "B2_KEY_ID", "WANDB_API_KEY"]

    remote = glue.remote()
    for key in ("status.json", "manifest.json", "logs/runner.log", "logs/train.log",
                "checkpoints/step-400.json", "reports/report.json"):
        assert f"runs/{RUN_ID}/{key}" in remote, sorted(remote)
    status = json.loads(glue.fetch("status.json"))
    assert status["state"] == "succeeded" and status["left_behind"] == [], status
    assert [p["name"] for p in status["phases"]] == PHASES
    assert any(f"destroying instance {iid}" in n for n in status["notes"]), status["notes"]
    assert "done:" in glue.fetch("logs/train.log").decode()
    assert not glue.leaks(iid), glue.leaks(iid)


def test_a_failed_training_still_uploads_then_destroys(vast_glue):
    glue: VastGlue = vast_glue()
    iid = glue.create(glue.spec(("python3", "train.py", "--no-such-flag")))
    assert glue.wait_gone(iid), glue.diagnostics(iid)
    assert own_calls(glue, iid) == [f"DELETE /api/v0/instances/{iid}/ → 200"]
    assert_destroyed_never_stopped(glue, iid)
    status = json.loads(glue.fetch("status.json"))
    assert status["state"] == "failed" and status["reason"] == "train: exit status 2", status
    records = {p["name"]: p for p in status["phases"]}
    assert records["upload"]["ok"] is True and records["upload"]["detail"] == "verified"
    assert "--no-such-flag" in glue.fetch("logs/train.log").decode()
    assert not glue.leaks(iid)


def test_a_destroy_from_outside_stops_the_containers_processes(vast_glue):
    glue: VastGlue = vast_glue(delete_grace_s=1.0)
    long_run = (*EXAMPLE_COMMAND[:2], "--steps", "1000000000", "--save-every", "1000000000")
    iid = glue.create(glue.spec(long_run))
    train_pid = int(glue.wait_file(iid, "var/lib/launcher/train.pid").read_text().split()[0])
    assert glue.sandbox.processes(str(iid)), glue.diagnostics(iid)

    assert glue.client.destroy_instance(iid) is True  # the launcher's teardown: account key
    assert glue.wait_gone(iid, 60), glue.diagnostics(iid)
    assert glue.sandbox.wait_idle(str(iid), 30), glue.diagnostics(iid)
    assert not alive(train_pid)
    assert_destroyed_never_stopped(glue, iid)
    deletes = [e for e in glue.emulator.events if e.method == "DELETE"]
    assert (deletes[0].key, deletes[0].status) == ("main", 200)
    # the stopped runner may still try its own destroy: its key died with the instance
    assert all((e.authorized, e.status) == (False, 401) for e in deletes[1:]), deletes
    assert not (glue.sandbox.root / str(iid) / "etc/launcher/secrets.env").exists()


def test_a_stop_ends_the_run_and_the_runner_destroys_its_instance_to_stop_the_bill(
        vast_glue):
    """A stop SIGTERMs the container's processes (its disk stays, and would keep billing);
    the runner answers the SIGTERM by uploading and destroying its own instance."""
    glue: VastGlue = vast_glue()
    long_run = (*EXAMPLE_COMMAND[:2], "--steps", "1000000000", "--save-every", "1000000000")
    iid = glue.create(glue.spec(long_run))
    glue.wait_file(iid, "var/lib/launcher/train.pid")
    stopped = requests.put(f"{glue.emulator.url}/instances/{iid}/", json={"state": "stopped"},
                           headers={"Authorization": f"Bearer {FAKE_VAST_KEY}"}, timeout=10)
    assert stopped.status_code == 200
    assert glue.sandbox.wait_idle(str(iid), 60), glue.diagnostics(iid)
    assert glue.wait_gone(iid, 30), glue.diagnostics(iid)
    assert own_calls(glue, iid) == [f"DELETE /api/v0/instances/{iid}/ → 200"]
    assert glue.emulator.bill(iid).destroyed
    assert "status.json" in {k.rsplit("/", 1)[-1] for k in glue.remote()}
