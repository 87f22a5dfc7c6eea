"""A sandbox container's output is its instance's container log in the Vast emulator: what
the onstart prints reaches ``request_logs`` as it is printed (a failing onstart's ``FAILED``
line before its destroy), and ``launcher logs RUN --machine`` prints it."""

from __future__ import annotations

import time

from support.keys import FAKE_B2_APP_KEY, FAKE_B2_KEY_ID, FAKE_VAST_KEY

from launcher.cli import main
from launcher.naming import instance_tags, launch_tag
from launcher.providers.vast import vast_label
from sandbox.containerbed import wait_until

from .conftest import EXAMPLE_COMMAND, RUN_ID, VastGlue

LONG_RUN = (*EXAMPLE_COMMAND[:2], "--steps", "1000000000", "--save-every", "1000000000")
DESTROY = "DELETE /instances/{id}/"


def log_holding(glue: VastGlue, iid: int, text: str, timeout: float = 60.0) -> str:
    """The container log once it holds ``text``."""
    seen = [""]

    def holds() -> bool:
        seen[0] = glue.client.request_logs(iid, deadline_s=10)
        return text in seen[0]

    assert wait_until(holds, timeout), (seen[0], glue.diagnostics(iid))
    return seen[0]


def test_a_failing_onstart_says_why_in_the_container_log_before_its_destroy(vast_glue):
    glue: VastGlue = vast_glue()
    # The onstart's destroy is held: its log must be readable while the instance exists.
    glue.emulator.inject(DESTROY, "hang", hang_s=5)
    iid = glue.create(glue.spec(), tamper=True)

    text = log_holding(glue, iid, "onstart: FAILED: ")
    failed = [line for line in text.splitlines() if "onstart: FAILED: " in line]
    assert len(failed) == 1 and failed[0].endswith(f"; destroying instance {iid}"), text
    assert "runner.pyz: sha256 is not " in failed[0]
    assert glue.emulator.state.listed(), "read after the destroy: nothing was shown"

    assert glue.wait_gone(iid, 60), glue.diagnostics(iid)
    assert glue.sandbox.view(str(iid)).onstart_exit == 1
    console = (glue.sandbox.root / str(iid) / "console.log").read_text()
    assert failed[0] in console  # the console keeps it as before
    assert not any(key in text for key in glue.secret_values())


def test_a_healthy_onstart_says_runner_started_and_logs_machine_prints_it(
        vast_glue, monkeypatch, capsys):
    glue: VastGlue = vast_glue(delete_grace_s=1.0)
    tags = (*instance_tags(RUN_ID, "example", time.time() + 3600), launch_tag("n0nce"))
    iid = glue.create(glue.spec(LONG_RUN), label=vast_label(RUN_ID, tags))
    view = glue.sandbox.wait_onstart(str(iid), 60)
    assert (view.state, view.onstart_exit) == ("running", 0), glue.diagnostics(iid)
    assert "onstart: runner started" in log_holding(glue, iid, "onstart: runner started")

    monkeypatch.chdir(glue.tmp)
    for name, value in {"VAST_API_URL": glue.emulator.url, "VAST_API_KEY": FAKE_VAST_KEY,
                        "B2_BUCKET": glue.bucket, "B2_S3_ENDPOINT": glue.server.endpoint,
                        "B2_APPLICATION_KEY_ID": FAKE_B2_KEY_ID,
                        "B2_APPLICATION_KEY": FAKE_B2_APP_KEY}.items():
        monkeypatch.setenv(name, value)
    for name in ("VULTR_KEY", "VULTR_API_URL", "LAUNCHER_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert main(["--provider", "vast", "logs", RUN_ID, "--machine"]) == 0
    captured = capsys.readouterr()
    assert "onstart: runner started" in captured.out, captured
    assert not any(key in captured.out + captured.err for key in glue.secret_values())

    assert glue.client.destroy_instance(iid) is True
    assert glue.wait_gone(iid, 60), glue.diagnostics(iid)
