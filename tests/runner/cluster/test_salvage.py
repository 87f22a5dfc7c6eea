"""Node 0 salvages a reaped node's volume whose upload was not verified: attach live to
itself, mount read-only, upload and verify under ``nodes/<j>/`` with a ``salvage.json``, and
delete the volume only when that verified.

The emulator's machines are the cluster fixture's host roots: attaching a volume hot-plugs the
sandbox's device (a sparse image shared by every attach, with its sysfs serial and by-id
link) into the instance's host, so node 1's volume, formatted and mounted on node 1, reappears
on node 0; the sandbox's fake mount shows a read-only mount the files the volume got where it
was mounted read-write. The machine tests' fakes wrap the sandbox's and log every call."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from launcher.emulator.hypervisor import NoopHypervisor
from launcher.emulator.records import Block, Instance
from launcher.runner.salvage import MOUNT_OPTIONS
from launcher.runner.spec import HealthSpec
from launcher.runner.supervisor import TEST_HOST_ENV
from launcher.runner.teardown import teardown
from launcher.sandbox import machine as sandbox_machine
from launcher.sandbox.machine import TOOLS_DIR
from runner.lifecycle.conftest import FAST
from runner.machine.conftest import FAKES, SYSTEM_PATH

from .conftest import RUN_ID, Node, fast_api, make_context
from .test_reap import put_status

CHECKPOINT = b"\x00weights" * 4096


class Hosts(NoopHypervisor):
    """Each instance's machine is ``<base>/node<k>`` (its label's node), as the cluster
    fixture lays the host roots out; volumes hot-plug as the sandbox's do."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.hosts: dict[str, Path] = {}
        self.devices: dict[str, tuple[str, Path]] = {}  # block id -> (instance, device)
        self.on_delete: Callable[[Instance], None] = lambda instance: None

    def instance_created(self, instance: Instance) -> None:
        self.hosts[instance.id] = self.base / f"node{instance.label.rsplit('node', 1)[1]}"

    def volume_attached(self, instance: Instance, block: Block) -> None:
        host = self.hosts[instance.id]
        name = sandbox_machine.attach_device(self.base / "hypervisor", host, block.id,
                                             block.mount_id, fresh=block.id not in self.devices)
        self.devices[block.id] = (instance.id, host / "dev" / name)

    def volume_detached(self, instance: Instance, block: Block) -> None:
        owner, device = self.devices[block.id]
        sandbox_machine.detach_device(self.hosts[owner], device.name, block.mount_id)

    def instance_deleted(self, instance: Instance) -> None:
        self.on_delete(instance)


@pytest.fixture
def hosts(tmp_path: Path) -> Hosts:
    return Hosts(tmp_path)


@pytest.fixture
def emulator(make_emulator, hosts):
    return make_emulator(hypervisor=hosts)


@pytest.fixture
def fake_state(tmp_path: Path) -> Path:
    state = tmp_path / "fake-state"
    state.mkdir()
    return state


def salvager(node: Node, s3_server, fake_state: Path, **env: str) -> Node:
    """Node 0 on a test host: its root holds the devices and mounts table, the fake tools
    come first on PATH (the machine tests', then the sandbox's for umount), and the run is
    cpu_only (the test host is honoured only then)."""
    (node.root / "proc").mkdir(exist_ok=True)
    (node.root / "proc/mounts").write_text("proc /proc proc rw 0 0\n")
    spec = replace(node.ctx.spec, health=HealthSpec(cpu_only=True))
    ctx = make_context(spec, s3_server)
    ctx.base_env.update(PATH=os.pathsep.join((str(FAKES), str(TOOLS_DIR), SYSTEM_PATH)),
                        FAKE_PYTHON=sys.executable, FAKE_STATE=str(fake_state),
                        **{TEST_HOST_ENV: str(node.root)}, **env)
    return replace(node, ctx=ctx)


def format_volume(hosts: Hosts, node: Node, files: dict[str, bytes]) -> None:
    """What node 1's volume phase and training did on its host: mkfs, a read-write mount at
    its mount point (the sandbox's fake tools), files in checkpoints, reports and cache."""
    _, device = hosts.devices[node.block_id]
    (node.root / "proc").mkdir(exist_ok=True)
    (node.root / "proc/mounts").write_text("proc /proc proc rw 0 0\n")
    point = Path(node.ctx.spec.volume.mount_point)
    for argv in (["mkfs.ext4", device], ["mount", "-t", "ext4", "-o", "noatime", device, point]):
        subprocess.run([sys.executable, str(TOOLS_DIR / argv[0]), *map(str, argv[1:])],
                       check=True, capture_output=True, timeout=30,
                       env={"PYTHONDONTWRITEBYTECODE": "1", TEST_HOST_ENV: str(node.root)})
    for rel, data in files.items():
        (point / rel).parent.mkdir(parents=True, exist_ok=True)
        (point / rel).write_bytes(data)


def calls(fake_state: Path, tool: str) -> list[list[str]]:
    log = fake_state / "calls.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return [row["argv"] for row in rows if row["tool"] == tool]


def recorded(node: Node, tool: str) -> list[list[str]]:
    """The sandbox fakes' own record of each call on the node's host (argv, options too)."""
    log = node.root / "var/log/sandbox-fakes.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return [row["argv"] for row in rows if row["tool"] == tool]


def node0_teardown(node: Node) -> list[str]:
    return teardown(node.ctx, True, final_upload=lambda ctx: None, options=FAST,
                    api=fast_api(node.ctx))


def read_object(s3_server, bucket: str, key: str) -> dict:
    done = s3_server.s5("cat", f"s3://{bucket}/{key}")
    return json.loads(done.stdout)


FILES = {"checkpoints/epoch-1/model.pt": CHECKPOINT, "checkpoints/last.txt": b"epoch-1\n",
         "reports/metrics.json": b'{"loss": 0.5}\n', "cache/shard-0": b"not uploaded"}


def test_an_unverified_volume_is_salvaged_read_only_then_deleted(
        cluster, hosts, emulator, s3_server, bucket, tmp_path, fake_state):
    nodes = cluster(2)
    format_volume(hosts, nodes[1], FILES)
    put_status(s3_server, bucket, tmp_path, 1, upload_ok=False)
    node = salvager(nodes[0], s3_server, fake_state)
    assert node0_teardown(node) == []
    prefix = f"runs/{RUN_ID}/nodes/1/"
    objects = s3_server.listing(bucket, prefix)
    assert {k: v for k, v in objects.items() if k != f"{prefix}salvage.json"} == {
        f"{prefix}status.json": objects[f"{prefix}status.json"],  # node 1's own, left as is
        f"{prefix}checkpoints/epoch-1/model.pt": len(CHECKPOINT),
        f"{prefix}checkpoints/last.txt": 8, f"{prefix}reports/metrics.json": 14}
    record = read_object(s3_server, bucket, f"{prefix}salvage.json")
    assert record | {"at": ""} == {
        "node": 1, "volume": nodes[1].block_id, "by_node": 0,
        "by_instance": nodes[0].instance_id, "at": "", "fs_type": "ext4",
        "folders": ["checkpoints", "reports"], "objects": 3, "bytes": len(CHECKPOINT) + 22,
        "verified": True, "problems": []}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ?.*", record["at"])
    assert emulator.state.blocks == {} and emulator.state.instances == {}
    salvage_point = f"{node.ctx.spec.volume.mount_point}-salvage-node1"
    (mounted,) = recorded(node, "mount")
    assert mounted[:4] == ["-t", "ext4", "-o", MOUNT_OPTIONS] and mounted[-1] == salvage_point
    assert MOUNT_OPTIONS.split(",")[0] == "ro"
    assert recorded(node, "umount") == [[salvage_point]]
    assert salvage_point not in (node.root / "proc/mounts").read_text()
    assert not calls(fake_state, "mkfs.ext4") and not calls(fake_state, "mkfs.xfs")
    attaches = [e for e in emulator.mutations() if e.route == "/blocks/{id}/attach"]
    assert [e.status for e in attaches] == [204, 204, 204]  # the launches', then node 0's
    assert any("salvage: node 1's volume: 3 objects" in n
               for n in node.ctx.reporter.status.notes)


def test_a_salvage_whose_upload_fails_keeps_the_volume_and_names_it(
        cluster, hosts, emulator, s3_server, bucket, tmp_path, fake_state):
    nodes = cluster(2)
    format_volume(hosts, nodes[1], FILES)
    refusing = tmp_path / "s5cmd-refusing-sync"
    refusing.write_text("#!/bin/sh\ncase \" $* \" in *\" sync \"*)\n"
                        "  echo 'ERROR \"sync\": AccessDenied: Access Denied status code: 403'"
                        " >&2; exit 1;;\nesac\n"
                        f"exec {s3_server.s5cmd} \"$@\"\n")
    refusing.chmod(0o755)
    node = salvager(nodes[0], s3_server, fake_state, LAUNCHER_S5CMD=str(refusing))
    left = node0_teardown(node)
    block = nodes[1].block_id
    assert len(left) == 1
    assert left[0].startswith(f"volume {block} of node 1 kept: its upload was not verified "
                              f"and it was not salvaged (the salvage's upload was not verified: ")
    assert "AccessDenied" in left[0]
    assert re.search(rf"— recover its data, then delete it: curl -X DELETE -H "
                     rf"\"Authorization: Bearer \$VULTR_KEY\" \S+/blocks/{block}$", left[0])
    assert node.ctx.reporter.status.left_behind == left
    assert list(emulator.state.blocks) == [block]
    assert emulator.state.blocks[block].attached_to == ""  # detached, for whoever recovers it
    assert emulator.state.instances == {}
    record = read_object(s3_server, bucket, f"runs/{RUN_ID}/nodes/1/salvage.json")
    assert record["verified"] is False and record["objects"] == 3
    assert "-salvage-node1" not in (node.root / "proc/mounts").read_text()
    teardown_record = json.loads((Path(node.ctx.spec.paths.state_dir)
                                  / "teardown.json").read_text())
    assert list(teardown_record["left_behind"].values()) == left


def test_a_blank_volume_has_nothing_to_salvage_and_is_deleted_unformatted(
        cluster, emulator, s3_server, bucket, tmp_path, fake_state):
    nodes = cluster(2)  # node 1's volume was never formatted: it died before its volume phase
    node = salvager(nodes[0], s3_server, fake_state)
    assert node0_teardown(node) == []
    assert emulator.state.blocks == {} and emulator.state.instances == {}
    assert calls(fake_state, "blkid") and not calls(fake_state, "mount")
    assert not calls(fake_state, "mkfs.ext4") and not calls(fake_state, "mkfs.xfs")
    assert s3_server.listing(bucket, f"runs/{RUN_ID}/nodes/1/") == {}
    assert any("holds no filesystem" in n and "nothing to salvage" in n
               for n in node.ctx.reporter.status.notes)


def test_with_no_time_before_the_deadline_the_volume_is_kept_untouched(
        cluster, emulator, s3_server, bucket, tmp_path, fake_state):
    nodes = cluster(2)
    node = salvager(nodes[0], s3_server, fake_state)
    spec = replace(node.ctx.spec, deadline_epoch=time.time() + 300)  # inside the margin
    node = salvager(replace(node, ctx=make_context(spec, s3_server)), s3_server, fake_state)
    left = node0_teardown(node)
    block = nodes[1].block_id
    assert len(left) == 1 and left[0].startswith(
        f"volume {block} of node 1 kept: its upload was not verified and it was not "
        f"salvaged (no time: ")
    assert [e.route for e in emulator.mutations()].count("/blocks/{id}/attach") == 2  # launches
    assert list(emulator.state.blocks) == [block]


def test_a_locked_instance_is_waited_out_and_a_device_that_never_comes_keeps_the_volume(
        cluster, hosts, emulator, s3_server, bucket, tmp_path, fake_state):
    nodes = cluster(2)
    node = salvager(nodes[0], s3_server, fake_state)
    node.ctx.base_env[TEST_HOST_ENV] = str(tmp_path / "elsewhere")  # not honoured: not a dir

    def lock_node0(instance: Instance) -> None:  # node 1 reaped: node 0 busy for a moment
        if instance.id == nodes[1].instance_id:
            emulator.state.lock_instance(nodes[0].instance_id, seconds=1.0)

    hosts.on_delete = lock_node0
    left = node0_teardown(node)
    block = nodes[1].block_id
    attaches = [e.status for e in emulator.mutations() if e.route == "/blocks/{id}/attach"]
    assert attaches[0] == 204 and 400 in attaches[1:] and attaches[-1] == 204
    assert len(left) == 1 and "the device of serial" in left[0] and "not done after" in left[0]
    assert emulator.state.blocks[block].attached_to == ""
