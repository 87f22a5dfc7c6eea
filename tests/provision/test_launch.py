"""``launcher run`` against the emulator and SeaweedFS: the happy path and the reconcile."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess

import pytest
import yaml
from runner.conftest import put

from launcher.naming import parse_tags, volume_label
from launcher.provision import LaunchResult, RunStateError, run_stage
from launcher.runner.boot import BootSpec
from launcher.vultr import BlockSpec

from .conftest import NOW, closed_port, git


def user_data(bed, instance_id: str) -> str:
    """The user data the launch sent, as the emulator keeps it (base64)."""
    return base64.b64decode(bed.emulator.state.get_instance(instance_id).user_data).decode()


def fetched_spec(bed, instance_id: str) -> str:
    """The run spec the instance's bootstrap fetches: the key and sha256 its boot.json pins,
    read back from the bucket and checked."""
    document = yaml.safe_load(user_data(bed, instance_id))
    entry = next(f for f in document["write_files"] if f["path"] == "/etc/launcher/boot.json")
    pin = next(p for p in BootSpec.from_json(entry["content"]).files
               if p.path == "/etc/launcher/run.json")
    target = bed.tmp / "run.json"
    bed.s3.s5("cp", f"s3://{bed.bucket}/{pin.key}", str(target))
    assert hashlib.sha256(target.read_bytes()).hexdigest() == pin.sha256
    return target.read_text()


def test_a_launch_creates_tags_attaches_and_uploads(bed):
    deps = bed.deps()
    result = run_stage(bed.request(), deps)
    assert isinstance(result, LaunchResult)
    run_id = result.run_id
    assert run_id == "smoke-20261118-110640"
    tags = parse_tags(result.instance.tags)
    assert (tags.run_id, tags.stage) == (run_id, "smoke")
    assert tags.expires_epoch == int(NOW + 3600)  # smoke: max_hours 1
    # one instance, one volume, attached live (no reboot), both found from the cloud alone
    found = deps.provider.find_run(run_id)
    assert [i.id for i in found.instances] == [result.instance.id]
    assert [v.attached_to for v in found.volumes] == [result.instance.id]
    assert found.volumes[0].label == volume_label(run_id)
    assert not any(e.note and "reboot" in e.note for e in bed.emulator.events)
    # the spec the document pins carries the real ids and the bundle's sha
    text = fetched_spec(bed, result.instance.id)
    volume = found.volumes[0]
    assert volume.id in text and volume.mount_id in text
    assert volume.id in user_data(bed, result.instance.id)  # the bootstrap's to delete
    assert result.code is not None and result.code.sha256 in text
    assert f"runs/{run_id}/code.tar.gz" in text
    # the bundle in the bucket is the one the spec names; the runner and spec sit beside it
    objects = bed.objects()
    assert objects.pop(f"runs/{run_id}/code.tar.gz") == result.code.size
    assert sorted(k.rsplit("-", 1)[0] for k in objects) == [
        f"runs/{run_id}/boot/run", f"runs/{run_id}/boot/runner"]
    fetched = bed.tmp / "fetched.tar.gz"
    bed.s3.s5("cp", f"s3://{bed.bucket}/runs/{run_id}/code.tar.gz", str(fetched))
    assert hashlib.sha256(fetched.read_bytes()).hexdigest() == result.code.sha256
    names = subprocess.run(["tar", "tzf", str(fetched)], capture_output=True, text=True,
                           check=True).stdout.split()
    assert sorted(names) == ["README.md", "train.py"]
    assert result.code.git_sha == git(bed.code_dir, "rev-parse", "HEAD")
    assert not result.code.dirty
    progress = deps.progress.text
    for step in ("uploading the code bundle", "attaching volume"):
        assert f"wait: {step}" in progress
    assert "waiting for volume" not in progress  # instant timing: active when created
    assert f"launcher status {run_id}" in json.dumps(result.as_dict())


def test_a_second_run_with_the_same_id_creates_nothing(bed):
    first = run_stage(bed.request(), bed.deps())
    mutations = len(bed.emulator.mutations())
    again = run_stage(bed.request(run_id=first.run_id), bed.deps())
    assert again.instance.id == first.instance.id and again.volume.id == first.volume.id
    assert again.created == () and len(again.reused) == 2
    assert len(bed.emulator.mutations()) == mutations  # not one create, attach or delete


def test_resuming_a_run_whose_volume_exists_creates_only_the_instance(bed):
    deps = bed.deps()
    run_id = "smoke-20261118-000000"
    block = deps.provider.client.create_block(BlockSpec("sea", 10, volume_label(run_id)))
    result = run_stage(bed.request(run_id=run_id, overrides=_regions("sjc,sea")), deps)
    assert result.volume.id == block.id and result.instance.region == "sea"
    assert [c.split()[0] for c in result.created] == ["instance"]
    assert result.volume.attached_to == result.instance.id


def test_a_dirty_checkout_is_packed_at_head_and_recorded_dirty(bed):
    (bed.code_dir / "train.py").write_text("print('changed, not committed')\n")
    deps = bed.deps()
    result = run_stage(bed.request(), deps)
    assert result.code.dirty and "uncommitted changes" in deps.progress.text
    assert f"{result.code.git_sha}-dirty" in fetched_spec(bed, result.instance.id)


def test_a_reusable_volume_is_reused_and_never_rolled_back(bed):
    deps = bed.deps()
    cache = deps.provider.client.create_block(BlockSpec("sjc", 50, "launcher-cache-ups"))
    result = run_stage(bed.request(overrides=_reuse("ups")), deps)
    assert result.volume.id == cache.id and result.volume.attached_to == result.instance.id
    assert all("volume" not in c for c in result.created)


def test_a_reusable_volume_is_created_under_its_label_when_missing(bed):
    deps = bed.deps()
    result = run_stage(bed.request(overrides=_reuse("ups")), deps)
    assert result.volume.label == "launcher-cache-ups"
    # the next run of the same reuse label finds it (here: once the first run is gone)
    deps.provider.delete_instance(result.instance.id)
    second = run_stage(bed.request(run_id="smoke-20261118-090000", overrides=_reuse("ups")),
                       bed.deps())
    assert second.volume.id == result.volume.id


def test_a_volume_in_use_by_another_run_is_refused_before_anything(bed):
    deps = bed.deps()
    first = run_stage(bed.request(overrides=_reuse("ups")), deps)
    before = len(bed.emulator.mutations())
    from launcher.errors import ConfigError

    with pytest.raises(ConfigError, match="another run is using it"):
        run_stage(bed.request(run_id="smoke-20261118-090000", overrides=_reuse("ups")),
                  bed.deps())
    assert len(bed.emulator.mutations()) == before and first.volume.attached_to


def _regions(text: str):
    from launcher.config import Overrides

    return Overrides(regions=tuple(text.split(",")))


def _reuse(name: str):
    from launcher.config import Overrides

    return Overrides(reuse_volume=name)


def test_a_new_launch_never_adopts_a_run_that_already_exists(quick_bed):
    from launcher.provision import RunStateError

    run_stage(quick_bed.request(), quick_bed.deps())  # same stage, same second: same run id
    before = len(quick_bed.emulator.mutations())
    with pytest.raises(RunStateError, match="--run-id smoke-"):
        run_stage(quick_bed.request(), quick_bed.deps())
    assert len(quick_bed.emulator.mutations()) == before


@pytest.mark.parametrize("state", ["succeeded", "failed", "torn-down"])
def test_a_run_that_ended_is_never_launched_again(bed, state):
    """Its code bundle, logs, status and checkpoints stay as they are: nothing is created
    or uploaded, and the error names the state and what to do."""
    run_id = "smoke-20261118-000000"
    status = json.dumps({"run_id": run_id, "state": state, "phase": "teardown"}).encode()
    put(bed.s3, bed.bucket, f"runs/{run_id}/status.json", status, bed.tmp)
    before = bed.objects()
    with pytest.raises(RunStateError) as caught:
        run_stage(bed.request(run_id=run_id), bed.deps())
    message = caught.value.message
    assert f"run {run_id} already ended ({state})" in message
    assert "leave out --run-id" in message and "nothing was launched" in message
    assert bed.emulator.mutations() == [] and bed.objects() == before


def test_a_run_whose_status_cannot_be_read_is_not_taken_for_a_new_one(bed):
    run_id = "smoke-20261118-000000"
    closed = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(RunStateError, match="cannot tell whether run .* already ended"):
        run_stage(bed.request(run_id=run_id), bed.deps(endpoint=closed))
    assert bed.emulator.mutations() == []


def test_a_run_still_running_may_be_resumed(bed):
    run_id = "smoke-20261118-000000"
    status = json.dumps({"run_id": run_id, "state": "running", "phase": "train"}).encode()
    put(bed.s3, bed.bucket, f"runs/{run_id}/status.json", status, bed.tmp)
    result = run_stage(bed.request(run_id=run_id), bed.deps())
    assert result.run_id == run_id and result.instance.id
