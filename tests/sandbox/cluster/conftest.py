"""A 2-node run in the process sandbox: the bed of ``tests/sandbox/conftest.py`` (emulator with
a :class:`~launcher.sandbox.ProcessHypervisor`, SeaweedFS), one VPC, and per node a volume and
an instance tagged ``run:<id>`` and ``node:<k>``, each with its own rendered document whose
run spec carries ``cluster=ClusterSpec(nodes, k, ...)`` — what the launcher's N-node
provisioning creates. The stage is :file:`ddp_train.py` under real torchrun (gloo, CPU), run
by the python of ``.venv-ups`` (``make ups-env``; found as ``tests/ups`` finds it: without
it the tests skip with the reason, and fail under ``CI=true``).

Each node trains as its own system account, which the sandbox hands out only as root.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from runner.conftest import put
from runner.lifecycle.conftest import PLAN, REGION, SNAPSHOT_ID
from support.need import need

from launcher.naming import node_label, node_tag, volume_label
from launcher.runner.spec import ClusterSpec
from launcher.vultr import BlockSpec, InstanceSpec
from sandbox.conftest import SECRET_VALUES, Bed
from sandbox.containerbed import code_tarball, wait_until

REPO_ROOT = Path(__file__).resolve().parents[3]
UPS_VENV = Path(os.environ.get("UPS_VENV", REPO_ROOT / ".venv-ups"))
UPS_PYTHON = UPS_VENV / "bin" / "python"
TRAINER = Path(__file__).with_name("ddp_train.py")
RUN_ID = "sbx-ddp-1"
NODES = 2


@dataclass(frozen=True)
class Node:
    index: int
    instance_id: str
    block_id: str


@dataclass
class Cluster:
    """The nodes of one run, and what the tests ask of them."""

    bed: Bed
    nodes: list[Node]
    vpc_id: str

    def left(self) -> tuple[list[str], list[str]]:
        """(instance ids, volume ids) the emulator still holds."""
        state = self.bed.emulator.state
        return list(state.instances), list(state.blocks)

    def wait_empty(self, timeout: float) -> bool:
        return wait_until(lambda: self.left() == ([], []), timeout)

    def host(self, node: int) -> Path:
        return self.bed.hypervisor.machine(self.nodes[node].instance_id).sandbox / "host"

    def log_text(self, node: int, name: str) -> str:
        path = self.host(node) / "var/log/launcher" / name
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def diagnostics(self) -> str:
        return "\n\n".join(self.bed.diagnostics(n.instance_id) + "\n--- train.log ---\n"
                           + self.log_text(n.index, "train.log")[-3000:]
                           for n in self.nodes)

    def assert_no_secret(self) -> None:
        """No secret value in any file of any machine, nor in the backend's log."""
        for path in sorted(self.bed.hypervisor.root.rglob("*")):
            if path.is_file() and not path.is_symlink() and path.stat().st_size < 2**24:
                data = path.read_bytes()
                leaked = [n for n, v in enumerate(SECRET_VALUES) if v.encode() in data]
                assert not leaked, f"secret #{leaked} in {path}"
        assert not any(v in line for line in self.bed.log for v in SECRET_VALUES)


@pytest.fixture(scope="session")
def ups_python() -> Path:
    need(UPS_PYTHON.is_file(), f"{UPS_PYTHON} missing: run make ups-env (torch for the "
                               "2-node tests)")
    need(os.geteuid() == 0, "a sandbox cluster needs root: each node trains as its own "
                            "system account")
    return UPS_PYTHON


def launch_cluster(bed: Bed, python: Path, *, steps: int, step_sleep: float,
                   peer_timeout_s: float = 10.0, reap_grace_s: float = 5.0,
                   barrier_timeout_s: float = 120.0) -> Cluster:
    """Put the DDP stage in the bucket, then create the VPC and each node's volume and
    instance (tags ``run:``/``node:``, attached to the VPC) and attach the volumes."""
    tarball = code_tarball(TRAINER.read_bytes())
    sha = hashlib.sha256(tarball).hexdigest()
    key = f"code/{RUN_ID}-{sha[:12]}.tar.gz"
    put(bed.server, bed.bucket, key, tarball, bed.tmp)
    bed = replace(bed, tarball_key=key, sha256=sha)
    vpc = bed.client.create_vpc(REGION, f"launcher-{REGION}")
    port = free_port()
    command = (str(python), "train.py", "--steps", str(steps), "--step-sleep",
               str(step_sleep), "--pg-timeout", "600")
    nodes, made = [], []
    for k in range(NODES):
        label = node_label(RUN_ID, k)
        block = bed.client.create_block(BlockSpec(REGION, 50, volume_label(label)))
        cluster = ClusterSpec(NODES, k, rdzv_port=port, barrier_timeout_s=barrier_timeout_s,
                              peer_timeout_s=peer_timeout_s, reap_grace_s=reap_grace_s,
                              network_id=vpc.id)
        spec = bed.spec(block, run_id=RUN_ID, command=command, cluster=cluster)
        instance = bed.client.create_instance(InstanceSpec(
            REGION, PLAN, label, snapshot_id=SNAPSHOT_ID, attach_vpc=(vpc.id,),
            tags=("launcher", f"run:{RUN_ID}", node_tag(k)),
            user_data=bed.render(spec).text))
        made.append((instance.id, block.id))
        nodes.append(Node(k, instance.id, block.id))
    for instance_id, block_id in made:
        bed.client.wait_instance_ready(instance_id)
        bed.client.attach_block(block_id, instance_id, live=True)
    return Cluster(bed, nodes, vpc.id)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the rendezvous port: never 29400, which another
    run on this machine may hold)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_text(read, needle: str, timeout: float) -> float | None:
    """Seconds until ``needle`` appears in ``read()``, or None after ``timeout``."""
    started = time.monotonic()
    if wait_until(lambda: needle in read(), timeout, most=0.25):
        return time.monotonic() - started
    return None
