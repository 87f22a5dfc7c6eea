"""The bootstrap (``boot.pyz fetch``): the runner and the run spec come from the bucket, pinned
by sha256, or the instance reports, releases its fresh volume and deletes itself.

Real pieces: SeaweedFS with s5cmd for the bucket, the Vultr emulator for the API, the
sandbox's metadata server for "which instance am I". Only the clock is fake where a
deadline is tested.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.keys import (
    ALL_FAKE_KEYS,
    FAKE_B2_APP_KEY,
    FAKE_B2_KEY_ID,
    FAKE_FENCED_KEY,
    FAKE_VULTR_KEY,
)

from launcher.runner import boot
from launcher.runner.boot import BootFailed, BootSpec, Pinned, failure_status, fetch_all
from launcher.runner.s5cmd import BINARY_ENV, s5cmd_env
from launcher.runner.status import Status
from runner.conftest import put

from .conftest import launch_attached

RUN_ID = "boot-run-1"
RUNNER = b"PK runner bytes " * 64
SPEC = b'{"run_id": "boot-run-1"}\n'


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Bed:
    spec: BootSpec
    root: Path
    emulator: object
    server: object
    bucket: str
    instance_id: str
    block_id: str
    lines: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return s5cmd_env(os.environ, FAKE_B2_KEY_ID, FAKE_B2_APP_KEY, "us-east-1")

    def boot(self, **changes) -> int:
        """Run the bootstrap's command on a boot.json with ``changes``."""
        path = self.root / "etc/launcher/boot.json"
        path.write_text(dataclasses.replace(self.spec, **changes).to_json())
        return boot.boot(str(path), self.lines.append)

    def status(self) -> dict:
        done = self.server.s5("cat", f"s3://{self.bucket}/runs/{RUN_ID}/status.json",
                              check=False)
        return json.loads(done.stdout) if done.returncode == 0 else {}

    def installed(self, pin: Pinned) -> bytes:
        return Path(pin.path).read_bytes()


@pytest.fixture
def bed(tmp_path: Path, s3_server, bucket, emulator, client, metadata, monkeypatch) -> Bed:
    """A bucket holding a runner and a spec, an instance with its volume attached, and a
    boot spec for them; ``root`` stands in for the instance's disk."""
    monkeypatch.setenv(BINARY_ENV, s3_server.s5cmd)
    put(s3_server, bucket, f"runs/{RUN_ID}/boot/runner.pyz", RUNNER, tmp_path)
    put(s3_server, bucket, f"runs/{RUN_ID}/boot/run.json", SPEC, tmp_path)
    instance, block = launch_attached(client, RUN_ID)
    root = tmp_path / "root"
    secrets = root / "etc/launcher/secrets.env"
    secrets.parent.mkdir(parents=True)
    secrets.write_text(f"VULTR_KEY={FAKE_VULTR_KEY}\nB2_KEY_ID={FAKE_B2_KEY_ID}\n"
                       f"B2_APP_KEY={FAKE_B2_APP_KEY}\nWANDB_API_KEY=\n")
    pins = (Pinned(f"runs/{RUN_ID}/boot/runner.pyz", str(root / "opt/launcher/runner.pyz"),
                   sha(RUNNER), len(RUNNER), "0755"),
            Pinned(f"runs/{RUN_ID}/boot/run.json", str(root / "etc/launcher/run.json"),
                   sha(SPEC), len(SPEC), "0644"))
    spec = BootSpec(run_id=RUN_ID, endpoint_url=s3_server.endpoint, bucket=bucket,
                    region="us-east-1", files=pins, status_key=f"runs/{RUN_ID}/status.json",
                    api_url=emulator.url, block_id=block.id, delete_volume=True,
                    secrets_file=str(secrets), metadata_url=metadata(instance.id),
                    fetch_deadline_s=0.0)
    return Bed(spec, root, emulator, s3_server, bucket, instance.id, block.id)


def test_every_pinned_file_lands_in_place_with_its_mode(bed):
    assert bed.boot() == 0
    runner, spec = bed.spec.files
    assert bed.installed(runner) == RUNNER and bed.installed(spec) == SPEC
    assert os.stat(runner.path).st_mode & 0o777 == 0o755
    assert os.stat(spec.path).st_mode & 0o777 == 0o644
    assert not list(Path(runner.path).parent.glob(".*.part"))
    assert bed.instance_id in bed.emulator.state.instances  # nothing removed


def test_a_file_already_in_place_is_not_fetched_again(bed, monkeypatch):
    assert bed.boot() == 0
    monkeypatch.setenv(BINARY_ENV, "/nonexistent/s5cmd")  # any fetch would now fail
    assert bed.boot() == 0
    assert bed.status() == {}


def test_another_file_under_the_key_is_refused_at_once_and_never_installed(bed, tmp_path):
    put(bed.server, bed.bucket, f"runs/{RUN_ID}/boot/runner.pyz", b"tampered", tmp_path)
    with pytest.raises(BootFailed, match="another file under that key"):
        fetch_all(dataclasses.replace(bed.spec, fetch_deadline_s=3600.0), bed.env(),
                  bed.lines.append, sleep=lambda s: pytest.fail("a mismatch is not retried"))
    runner = bed.spec.files[0]
    assert not Path(runner.path).exists()
    assert not list(Path(runner.path).parent.glob(".*.part"))


def test_a_missing_object_is_retried_with_backoff_until_the_deadline(bed):
    now, slept = [0.0], []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    missing = dataclasses.replace(bed.spec.files[1], key=f"runs/{RUN_ID}/boot/absent.json")
    spec = dataclasses.replace(bed.spec, files=(bed.spec.files[0], missing),
                               fetch_deadline_s=100.0)
    with pytest.raises(BootFailed, match=r"could not fetch 1 file\(s\) in 6 round\(s\)"):
        fetch_all(spec, bed.env(), bed.lines.append, clock=lambda: now[0], sleep=sleep)
    assert slept == [2.0, 4.0, 8.0, 16.0, 32.0]  # doubling; the next would pass the deadline
    assert bed.installed(bed.spec.files[0]) == RUNNER  # what could be had is in place


def test_when_the_files_cannot_be_had_the_instance_reports_and_removes_itself(bed):
    missing = dataclasses.replace(bed.spec.files[0], key=f"runs/{RUN_ID}/boot/gone.pyz")
    assert bed.boot(files=(missing, bed.spec.files[1])) == 1
    state = bed.emulator.state
    assert bed.instance_id not in state.instances and bed.block_id not in state.blocks
    status = bed.status()
    assert Status(**status).state == "failed"  # the runner status's own fields
    assert (status["phase"], status["left_behind"]) == ("boot", [])
    assert "gone.pyz" in status["reason"] and status["phases"][0]["ok"] is False
    text = "\n".join(bed.lines) + json.dumps(status)
    assert "delete accepted" in text and f"volume {bed.block_id} deleted" in text
    assert not any(key in text for key in ALL_FAKE_KEYS)


def test_a_reused_volume_is_kept_and_named(bed):
    missing = dataclasses.replace(bed.spec.files[0], key=f"runs/{RUN_ID}/boot/gone.pyz")
    assert bed.boot(files=(missing,), delete_volume=False) == 1
    assert bed.instance_id not in bed.emulator.state.instances
    assert bed.block_id in bed.emulator.state.blocks
    (line,) = bed.status()["left_behind"]
    assert line.startswith(f"volume {bed.block_id} kept") and f"/blocks/{bed.block_id}" in line


def test_an_unexpected_error_still_removes_the_instance(bed):
    blocked = bed.root / "opt"
    blocked.write_text("a file where a directory must be")
    assert bed.boot() == 1
    assert bed.instance_id not in bed.emulator.state.instances
    assert "boot: FAILED:" in "\n".join(bed.lines)


def test_a_refused_delete_leaves_a_status_naming_what_bills(bed):
    bed.emulator.inject("DELETE /blocks/{id}", "refuse", status=401, error="unauthorized")
    bed.emulator.inject("DELETE /instances/{id}", "refuse", status=401, error="unauthorized")
    missing = dataclasses.replace(bed.spec.files[0], key=f"runs/{RUN_ID}/boot/gone.pyz")
    assert bed.boot(files=(missing,)) == 1
    volume, instance = bed.status()["left_behind"]
    assert volume.startswith(f"volume {bed.block_id} still exists") and "curl" in volume
    assert f"tag run:{RUN_ID}" in instance and f"/instances/{bed.instance_id}" in instance
    assert all("this instance's key was refused" in line for line in (volume, instance))
    assert bed.instance_id in bed.emulator.state.instances


def test_a_key_refused_from_this_address_stops_the_run_before_it_starts(bed):
    """The launcher proved the key from the operator's address; the instance's own address
    may be outside the key's access control, and then nothing could be deleted at the end."""
    bed.emulator.add_key(FAKE_FENCED_KEY, "self-destruct", allowed_ips=["203.0.113.7"])
    secrets = Path(bed.spec.secrets_file)
    secrets.write_text(secrets.read_text().replace(FAKE_VULTR_KEY, FAKE_FENCED_KEY))
    assert bed.boot() == 1
    assert bed.installed(bed.spec.files[0]) == RUNNER  # fetched, but ExecStartPre fails
    status = bed.status()
    assert "refused from its own address" in status["reason"]
    assert "Unauthorized IP address: 127.0.0.1" in status["reason"]
    volume, instance = status["left_behind"]
    assert volume.startswith(f"volume {bed.block_id} still exists")
    assert instance.startswith(f"instance {bed.instance_id} of run {RUN_ID}")
    assert bed.instance_id in bed.emulator.state.instances  # it could not, and says so
    text = "\n".join(bed.lines) + json.dumps(status)
    assert not any(key in text for key in ALL_FAKE_KEYS)


def test_a_key_proved_from_this_address_lets_the_runner_start(bed):
    assert bed.boot() == 0
    proofs = [e for e in bed.emulator.events if e.method == "GET" and e.path == "/v2/blocks"]
    assert len(proofs) == 1 and proofs[0].status == 200
    assert "boot: the Vultr key is accepted from this address" in bed.lines


def test_a_key_proof_without_a_clear_answer_does_not_stop_the_run(bed):
    bed.emulator.inject("GET /blocks", "refuse", status=400, error="bad_per_page")
    assert bed.boot() == 0
    assert any("could not be proved" in line and "going on" in line for line in bed.lines)
    assert bed.instance_id in bed.emulator.state.instances


def test_an_unreadable_boot_spec_is_exit_2_and_touches_nothing(bed):
    path = bed.root / "etc/launcher/boot.json"
    path.write_text('{"version": 1, "run_id": "x"}')
    assert boot.boot(str(path), bed.lines.append) == 2
    assert bed.instance_id in bed.emulator.state.instances
    assert bed.lines and bed.lines[0].startswith("boot: cannot start:")


@pytest.mark.parametrize("change", [
    {"files": (Pinned("k", "relative/path", "0" * 64, 1),)},
    {"files": (Pinned("k", "/p", "not-a-sha", 1),)},
    {"files": (Pinned("k", "/p", "0" * 64, 1, "755"),)},
    {"bucket": ""},
    {"delete_volume": "yes"},
])
def test_a_boot_spec_is_checked_when_made(bed, change):
    with pytest.raises(ValueError, match="boot spec"):
        dataclasses.replace(bed.spec, **change)


def test_the_boot_spec_round_trips_and_refuses_unknown_fields(bed):
    assert BootSpec.from_json(bed.spec.to_json()) == bed.spec
    data = json.loads(bed.spec.to_json()) | {"surprise": 1}
    with pytest.raises(ValueError, match="surprise"):
        BootSpec.from_json(json.dumps(data))


def test_the_failure_status_has_exactly_the_runner_status_fields(bed):
    status = failure_status(bed.spec, "why", "2026-01-01T00:00:00Z", ["left"])
    assert set(status) == {f.name for f in dataclasses.fields(Status)}
