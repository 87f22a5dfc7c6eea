"""The runner's scrubber against real secret values: every key of the run's secrets file put
into the text that reaches ``status.json`` (notes, reason, left_behind, phase details),
``runner.log`` and its stderr copy, the error funnel's one line, and the bootstrap's failure
status and log — and found in none of them, only ``***`` where each was.

The other "scrubbed" tests check messages that never held a secret; these would fail if the
scrubber (``launcher.runner.secretsfile.scrub_values`` / ``launcher.runner.spec.scrub``)
returned its input unchanged.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from support.keys import FAKE_B2_APP_KEY, FAKE_B2_KEY_ID, FAKE_VULTR_KEY, FAKE_WANDB_KEY
from support.leaks import leaks, masked

from launcher.runner import boot, cli
from launcher.runner.status import PhaseFailed

from .conftest import fake_secrets, make_spec, read_status
from .test_boot import RUN_ID as BOOT_RUN_ID
from .test_boot import bed  # noqa: F401 - the bootstrap's fixture, used below

RUN_SECRETS = (FAKE_VULTR_KEY, FAKE_B2_KEY_ID, FAKE_B2_APP_KEY, FAKE_WANDB_KEY)


def leaky(what: str, values: tuple[str, ...] = RUN_SECRETS) -> str:
    """A message holding every secret value, each between ``<`` and ``>``."""
    return f"{what}: " + " ".join(f"<{value}>" for value in values)


def write_run(spec) -> str:
    """The spec and the secrets file (every secret set) as the instance has them."""
    secrets = Path(spec.paths.secrets_file)
    secrets.parent.mkdir(parents=True, exist_ok=True)
    secrets.write_text(fake_secrets().to_env_file())
    secrets.chmod(0o600)
    spec_path = secrets.parent / "run.json"
    spec_path.write_text(spec.to_json())
    return str(spec_path)


def files_under(*folders: str) -> dict[str, str]:
    return {str(path): path.read_text(errors="replace") for folder in folders
            for path in sorted(Path(folder).rglob("*")) if path.is_file()}


def test_the_reporter_the_cli_builds_scrubs_every_secret_from_status_and_log(
        tmp_path, monkeypatch, capsys):
    """Each way text reaches status.json or runner.log, fed all four secrets of the
    secrets file the CLI reads: none survives, each became ``***``."""
    spec = make_spec(tmp_path)
    spec_path = write_run(spec)

    def command(ctx, args) -> int:
        ctx.log(leaky("log"))
        ctx.reporter.note(leaky("note"))
        ctx.reporter.left_behind(leaky("left"))
        with pytest.raises(PhaseFailed), ctx.reporter.phase("volume"):
            raise PhaseFailed("volume", leaky("phase failed"))
        with pytest.raises(RuntimeError), ctx.reporter.phase("data"):
            raise RuntimeError(leaky("phase crashed"))
        ctx.reporter.set_state("failed", leaky("reason"))
        return 1

    monkeypatch.setitem(cli.COMMANDS, "supervise", command)
    assert cli.main(["supervise", "--spec", spec_path]) == 1
    stderr = capsys.readouterr().err

    outputs = files_under(spec.paths.state_dir, spec.paths.log_dir)
    outputs["stderr (journald)"] = stderr
    assert leaks(outputs) == []
    status = read_status(spec)
    four = "<***> <***> <***> <***>"
    assert status["notes"] == [f"note: {four}"]
    assert status["left_behind"] == [f"left: {four}"]
    assert status["reason"] == f"reason: {four}"
    assert [(p["name"], p["ok"], p["detail"]) for p in status["phases"]] == [
        ("volume", False, f"phase failed: {four}"),
        ("data", False, f"RuntimeError: phase crashed: {four}")]
    log = Path(spec.paths.log_dir, "runner.log").read_text()
    for line in ("log", "note", "LEFT BEHIND: left", "phase volume: FAILED"):
        assert line in log
    assert log.count(four) == 5, masked(log)  # log, note, left, two phase failures


@pytest.mark.parametrize(("error", "code", "prefix"), [
    (RuntimeError, 1, "runner: internal error: RuntimeError: "),
    (cli.UsageError, 2, "runner: "),
])
def test_the_error_funnel_scrubs_every_secret(tmp_path, monkeypatch, capsys, error, code,
                                              prefix):
    spec = make_spec(tmp_path)
    spec_path = write_run(spec)

    def command(ctx, args) -> int:
        raise error(leaky("boom"))

    monkeypatch.setitem(cli.COMMANDS, "teardown", command)
    assert cli.main(["teardown", "--spec", spec_path]) == code
    err = capsys.readouterr().err
    assert leaks({"stderr": err}) == []
    assert err == f"{prefix}boom: <***> <***> <***> <***>\n", masked(err)


BOOT_SECRETS = (FAKE_VULTR_KEY, FAKE_B2_KEY_ID, FAKE_B2_APP_KEY)  # the bed's secrets file


def test_a_boot_failure_naming_a_secret_is_scrubbed_in_status_and_log(bed):  # noqa: F811
    """The missing object's key (echoed into the reason) holds every secret value."""
    name = "-".join(BOOT_SECRETS)
    missing = dataclasses.replace(bed.spec.files[0], key=f"runs/{BOOT_RUN_ID}/boot/{name}.pyz")
    assert bed.boot(files=(missing, bed.spec.files[1])) == 1
    status = bed.status()
    outputs = {"status.json": json.dumps(status), "boot log": "\n".join(bed.lines)}
    assert leaks(outputs) == []
    assert "***-***-***.pyz" in status["reason"], masked(status["reason"])
    assert "***-***-***.pyz" in status["phases"][0]["detail"]
    assert "boot: FAILED:" in outputs["boot log"] and "***-***-***" in outputs["boot log"]


def test_an_unexpected_boot_error_holding_secrets_is_scrubbed(bed, monkeypatch):  # noqa: F811
    def crash(spec, env, log) -> None:
        raise RuntimeError(leaky("fetch crashed", BOOT_SECRETS))

    monkeypatch.setattr(boot, "fetch_all", crash)
    assert bed.boot() == 1
    status = bed.status()
    outputs = {"status.json": json.dumps(status), "boot log": "\n".join(bed.lines)}
    assert leaks(outputs) == []
    assert status["reason"] == "boot: RuntimeError: fetch crashed: <***> <***> <***>", \
        masked(status["reason"])
    assert any(line == "boot: FAILED: RuntimeError: fetch crashed: <***> <***> <***>"
               for line in bed.lines), masked("\n".join(bed.lines))
