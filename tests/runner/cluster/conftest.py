"""Fixtures for the cluster phase of an N-node run: the Vultr emulator as the API (instances
tagged ``run:<id>`` and ``node:<k>``), the session's S3 server and a fresh bucket for the
records, a metadata service on 127.0.0.1 per node whose ``/v1.json`` lists a public and a
private interface, and a host root per node with ``sys/class/net/<name>/address``."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from support.keys import FAKE_B2_APP_KEY, FAKE_B2_KEY_ID, FAKE_VULTR_KEY
from support.metadata import MetadataServers

from launcher.runner.cluster import ClusterOptions
from launcher.runner.context import Context
from launcher.runner.retry import RetryPolicy
from launcher.runner.spec import (
    ClusterSpec,
    CodeSource,
    Paths,
    RunSecrets,
    RunSpec,
    Storage,
    VolumeSpec,
    scrub,
)
from launcher.runner.status import Reporter
from launcher.runner.vultr import SelfApi
from launcher.vultr import BlockSpec, InstanceSpec
from runner.conftest import S3Server

RUN_ID = "run-gang-1"
REGION = "sea"
PLAN = "vcg-a100-6c-60g-40vram"
SNAPSHOT_ID = "5f0d2c1e-8a3b-4c6d-9e7f-0a1b2c3d4e5f"
SECRETS = RunSecrets({"VULTR_KEY": FAKE_VULTR_KEY, "B2_KEY_ID": FAKE_B2_KEY_ID,
                      "B2_APP_KEY": FAKE_B2_APP_KEY})
FAST_POLICY = RetryPolicy(max_attempts=None, deadline_s=5.0, base_delay=0.01, max_delay=0.05,
                          retry_after_cap=0.05)


def public_mac(node: int) -> str:
    return f"56:00:05:00:00:{node:02x}"


def private_mac(node: int) -> str:
    return f"5a:01:05:00:00:{node:02x}"


def private_address(node: int) -> str:
    return f"10.9.96.{node + 3}"


def v1_document(instance_id: str, node: int, *, private: bool = True) -> dict:
    """Vultr's ``/v1.json`` with the interfaces cloud-init's Vultr datasource reads
    (canonical/cloud-init cloudinit/sources/helpers/vultr.py): the public one first, the
    VPC one with ``network-type: private`` and a static ``ipv4``."""
    interfaces = [{"mac": public_mac(node), "network-type": "public",
                   "ipv4": {"additional": []}, "ipv6": {"additional": []}}]
    if private:
        interfaces.append({"mac": private_mac(node), "network-type": "private",
                           "network-v2-id": "vpc-1",
                           "ipv4": {"address": private_address(node),
                                    "netmask": "255.255.240.0", "additional": []}})
    return {"instance-v2-id": instance_id, "hostname": f"{RUN_ID}-node{node}",
            "region": {"regioncode": REGION.upper()}, "interfaces": interfaces}


@pytest.fixture
def metadata() -> Iterator[Callable[[dict], str]]:
    """``serve(document) -> url``: a metadata service on 127.0.0.1 answering ``/v1.json``."""
    servers = MetadataServers()
    yield servers.serve
    servers.close()


def host_root(root: Path, node: int) -> Path:
    """``sys/class/net`` of node ``node``: lo, the public NIC, the private NIC (upper case,
    as a MAC may be written)."""
    net = root / "sys/class/net"
    for name, mac in (("lo", "00:00:00:00:00:00"), ("enp1s0", public_mac(node)),
                      ("enp6s0", private_mac(node).upper())):
        (net / name).mkdir(parents=True, exist_ok=True)
        (net / name / "address").write_text(mac + "\n")
    return root


@dataclass
class Node:
    index: int
    instance_id: str
    block_id: str
    ctx: Context
    root: Path

    def options(self, api: SelfApi | None = None) -> ClusterOptions:
        return ClusterOptions(net_dir=self.root / "sys/class/net", api=api,
                              metadata_deadline_s=2.0)


def make_spec(root: Path, server: S3Server, bucket: str, api_url: str, metadata_url: str,
              node: int, nodes: int, block_id: str = "", *,
              trainer_user: str = "no-such-trainer-user", command: tuple[str, ...] = (),
              **cluster) -> RunSpec:
    paths = Paths(state_dir=str(root / "state"), log_dir=str(root / "log"),
                  code_dir=str(root / "code"), secrets_file=str(root / "secrets.env"),
                  trainer_user=trainer_user)
    settings = {"barrier_timeout_s": 20.0, "peer_timeout_s": 60.0, "reap_grace_s": 1.0,
                **cluster}
    return RunSpec(
        run_id=RUN_ID, stage="pretrain",
        command=command or ("python3", "train.py", "--epochs", "1"),
        code=CodeSource(), storage=Storage(server.endpoint, bucket, "data", region="us-east-1"),
        volume=VolumeSpec(block_id=block_id, mount_id="mnt-1", mount_point=str(root / "mnt")),
        deadline_epoch=time.time() + 3600, paths=paths, api_url=api_url,
        metadata_url=metadata_url,
        cluster=ClusterSpec(nodes=nodes, node_index=node, **settings))


def make_context(spec: RunSpec, server: S3Server, **options) -> Context:
    reporter = Reporter(spec.run_id, spec.paths.state_dir, spec.paths.log_dir,
                        scrub=lambda text: scrub(text, SECRETS))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["LAUNCHER_S5CMD"] = server.s5cmd
    Path(spec.volume.mount_point).mkdir(parents=True, exist_ok=True)
    return Context(spec, SECRETS, reporter, base_env=env, **options)


def launch_node(client, node: int, run_id: str = RUN_ID, *, tagged: bool = True):
    """A node's instance (tagged ``run:<id>`` and ``node:<k>`` unless not ``tagged``) with
    its volume attached, as a launch leaves them."""
    block = client.create_block(BlockSpec(REGION, 50, f"{run_id}-node{node}-cache"))
    tags = ("launcher", f"run:{run_id}", f"node:{node}") if tagged else ("launcher",)
    instance = client.create_instance(InstanceSpec(
        REGION, PLAN, f"{run_id}-node{node}", snapshot_id=SNAPSHOT_ID, tags=tags,
        user_data="#cloud-config\n{}\n"))
    client.wait_instance_ready(instance.id)
    client.attach_block(block.id, instance.id, live=True)
    return instance, block


@pytest.fixture
def cluster(tmp_path, emulator, client, metadata, s3_server, bucket):
    """``make(nodes=2, base=None, **settings) -> list[Node]``: every node launched in the
    emulator, each with its metadata service, host root (under ``base``, default the test's
    temp dir) and Context; ``settings`` are make_spec's keywords."""
    def make(nodes: int = 2, *, private: bool = True, base: Path | None = None,
             **settings) -> list[Node]:
        made = []
        for k in range(nodes):
            instance, block = launch_node(client, k)
            root = host_root((base or tmp_path) / f"node{k}", k)
            url = metadata(v1_document(instance.id, k, private=private))
            spec = make_spec(root, s3_server, bucket, emulator.url, url, k, nodes,
                             block_id=block.id, **settings)
            made.append(Node(k, instance.id, block.id, make_context(spec, s3_server), root))
        return made

    return make


def fast_api(ctx: Context) -> SelfApi:
    return SelfApi(ctx.spec.api_url, FAKE_VULTR_KEY, timeout=5.0, policy=FAST_POLICY)


def with_changes(node: Node, server: S3Server, **cluster) -> Node:
    """``node`` with a new Context whose cluster settings are changed."""
    spec = replace(node.ctx.spec, cluster=replace(node.ctx.spec.cluster, **cluster))
    return replace(node, ctx=make_context(spec, server))
