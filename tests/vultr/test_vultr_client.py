"""VultrClient: one method per endpoint hits the right path, params and body; waits."""

from __future__ import annotations

import base64

import pytest

from launcher.errors import ApiError, ConfigError, WaitFailedError, WaitTimeoutError
from launcher.vultr import BlockSpec, InstanceSpec, PollPolicy, VultrClient, VultrSettings
from launcher.vultr.client import _seg


def listing(key: str, *items: dict) -> dict:
    return {key: list(items), "meta": {"total": len(items), "links": {"next": "", "prev": ""}}}


def test_catalogue_calls_are_public(stub, client):
    stub.add("GET", "/plans", stub.Reply(200, listing("plans", {"id": "vcg-1", "type": "vcg"})))
    stub.add("GET", "/plans-metal", stub.Reply(200, listing("plans_metal", {"id": "vbm-1"})))
    stub.add("GET", "/regions", stub.Reply(200, listing("regions", {"id": "ewr"})))
    stub.add("GET", "/regions/ewr/availability", stub.Reply(200, {"available_plans": ["vcg-1"]}))
    assert [p.id for p in client.list_plans()] == ["vcg-1"]
    assert [p.id for p in client.list_metal_plans()] == ["vbm-1"]
    assert [r.id for r in client.list_regions()] == ["ewr"]
    assert stub.calls("GET", "/plans")[0].query["type"] == ["vcg"]
    assert all("Authorization" not in r.headers for r in stub.received)


def test_availability_sends_the_key_when_there_is_one(stub, client, make_http, fake_key):
    # An unauthenticated availability call has been reported to answer an empty list.
    stub.add("GET", "/regions/ewr/availability", stub.Reply(200, {"available_plans": ["vcg-1"]}))
    availability = client.region_availability("ewr")
    assert availability.available_plans == ("vcg-1",) and availability.region == "ewr"
    (call,) = stub.calls("GET", "/regions/ewr/availability")
    assert call.query["type"] == ["vcg"] and call.headers["Authorization"] == f"Bearer {fake_key}"
    keyless = VultrClient(make_http(key=None))
    assert keyless.region_availability("ewr").available_plans == ("vcg-1",)
    assert "Authorization" not in stub.calls("GET", "/regions/ewr/availability")[1].headers


def test_the_instance_filters_are_checked_again_here(stub, client):
    ours = {"id": "i-1", "label": "run", "region": "ewr", "tags": ["launcher", "run:a"]}
    theirs = {"id": "i-2", "label": "other", "region": "ewr", "tags": ["web"]}
    # A server that ignores the deprecated tag filter answers every instance.
    stub.add("GET", "/instances", stub.Reply(200, listing("instances", ours, theirs)))
    assert [i.id for i in client.list_instances(tag="run:a")] == ["i-1"]


def test_instance_calls(stub, client, fake_key):
    inst = {"id": "i-1", "label": "run", "status": "active", "default_password": "pw-secret"}
    stub.add("GET", "/instances/i-1", stub.Reply(200, {"instance": inst}))
    stub.add("GET", "/instances", stub.Reply(200, listing("instances", inst)))
    got = client.get_instance("i-1")
    assert got.label == "run" and "pw-secret" not in repr(got)
    assert client.list_instances(label="run", region="ewr", tag="t") == ()  # i-1 has no tag t
    assert stub.calls("GET", "/instances")[0].query == {
        "label": ["run"],
        "tag": ["t"],
        "region": ["ewr"],
        "per_page": ["100"],
    }
    assert stub.received[0].headers["Authorization"] == f"Bearer {fake_key}"


def test_response_missing_its_object_is_an_api_error(stub, client):
    stub.add("GET", "/account", stub.Reply(200, {"acc": {}}))
    with pytest.raises(ApiError, match="no 'account' object"):
        client.get_account()


def test_create_instance_body(stub, client):
    spec = InstanceSpec(
        region="ewr",
        plan="vcg-1",
        label="run-1",
        snapshot_id="snap-1",
        hostname="h",
        tags=["launcher"],
        user_data="#cloud-config\nsecret: x\n",
        sshkey_ids=["k1"],
        enable_ipv6=True,
    )
    stub.add("POST", "/instances", stub.Reply(202, {"instance": {"id": "i-1"}}))
    assert client.create_instance(spec).id == "i-1"
    body = stub.received[0].json()
    assert body == {
        "region": "ewr",
        "plan": "vcg-1",
        "label": "run-1",
        "tags": ["launcher"],
        "snapshot_id": "snap-1",
        "hostname": "h",
        "sshkey_id": ["k1"],
        "enable_ipv6": True,
        "user_data": base64.b64encode(b"#cloud-config\nsecret: x\n").decode(),
        "backups": "disabled",  # explicit, as terraform-provider-vultr sends it
    }
    assert "secret" not in repr(spec)
    assert InstanceSpec("ewr", "p", "l", os_id=1, user_data=b"\x00").body()["user_data"] == "AA=="


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "got none"),
        ({"os_id": 1, "snapshot_id": "s"}, "got os_id, snapshot_id"),
        ({"os_id": 1, "label": ""}, "needs a label"),
        ({"os_id": 1, "region": ""}, "needs a region"),
    ],
)
def test_instance_spec_is_validated_locally(kwargs, message):
    args = {"region": "ewr", "plan": "vcg-1", "label": "l", **kwargs}
    with pytest.raises(ConfigError, match=message):
        InstanceSpec(**args)


@pytest.mark.parametrize(
    "args",
    [
        ("ewr", 5, "l"),
        ("ewr", 10_001, "l"),
        ("ewr", 50, ""),
        ("ewr", 50, "l", "nvme"),
        ("ewr", "50", "l"),
        ("ewr", 0, "l", "storage_opt"),
        ("ewr", 39, "l", "storage_opt"),  # 40-40,000 GB (Vultr's OpenAPI document)
        ("ewr", 40_001, "l", "storage_opt"),
    ],
)
def test_block_spec_is_validated_locally(args):
    with pytest.raises(ConfigError):
        BlockSpec(*args)


def test_block_sizes_are_vultr_s():
    assert BlockSpec("ewr", 40_000, "l", "storage_opt").size_gb == 40_000
    assert BlockSpec("ewr", 10, "l").size_gb == 10


def test_block_calls(stub, client):
    blocks = [{"id": "b-1", "label": "cache"}, {"id": "b-2", "label": "cache-2"}]
    stub.add("POST", "/blocks", stub.Reply(202, {"block": {"id": "b-1", "status": "pending"}}))
    stub.add("GET", "/blocks", stub.Reply(200, listing("blocks", *blocks)))
    stub.add("GET", "/blocks/b-1", stub.Reply(200, {"block": blocks[0]}))
    assert client.create_block(BlockSpec("ewr", 100, "cache")).status == "pending"
    assert stub.received[0].json() == {
        "region": "ewr",
        "size_gb": 100,
        "label": "cache",
        "block_type": "high_perf",
    }
    assert [b.id for b in client.list_blocks(label="cache")] == ["b-1"]
    assert len(client.list_blocks()) == 2
    assert "label" not in stub.calls("GET", "/blocks")[0].query
    assert client.get_block("b-1").label == "cache"


def test_snapshot_and_account_calls(stub, client):
    snaps = [{"id": "s-1", "description": "img"}, {"id": "s-2", "description": "img-old"}]
    stub.add("GET", "/snapshots", stub.Reply(200, listing("snapshots", *snaps)))
    stub.add("GET", "/snapshots/s-1", stub.Reply(200, {"snapshot": snaps[0]}))
    stub.add("GET", "/ssh-keys", stub.Reply(200, listing("ssh_keys", {"id": "k", "name": "me"})))
    stub.add("GET", "/account", stub.Reply(200, {"account": {"name": "A", "acls": ["billing"]}}))
    stub.add("GET", "/users", stub.Reply(200, listing("users", {"id": "u", "api_enabled": True})))
    assert [s.id for s in client.list_snapshots(description="img")] == ["s-1"]
    assert len(client.list_snapshots()) == 2
    assert client.get_snapshot("s-1").description == "img"
    assert client.list_ssh_keys()[0].name == "me"
    assert client.get_account().acls == ("billing",)
    assert client.list_users()[0].api_enabled is True


def test_ids_are_single_path_segments(stub, client):
    assert _seg("a/b?c") == "a%2Fb%3Fc"
    with pytest.raises(ValueError):
        _seg("")
    stub.add("GET", "/instances/a%2Fb", stub.Reply(200, {"instance": {"id": "x"}}))
    assert client.get_instance("a/b").id == "x"


# -- waits -------------------------------------------------------------------------------------


def _states(stub, path: str, key: str, states: list[dict]):
    replies = [stub.Reply(200, {key: {"id": "x", **s}}) for s in states]
    stub.add("GET", path, *replies)


def test_wait_instance_ready_polls_with_capped_backoff(stub, client, fake_time):
    pending = {"status": "pending", "power_status": "running", "server_status": "none"}
    ready = {"status": "active", "power_status": "running", "server_status": "ok"}
    _states(stub, "/instances/x", "instance", [pending] * 5 + [ready])
    assert client.wait_instance_ready("x").is_ready
    assert fake_time.sleeps == [1.0, 2.0, 4.0, 8.0, 8.0]


def test_wait_times_out_with_the_last_state(stub, client, fake_time):
    _states(stub, "/blocks/x", "block", [{"status": "pending"}])
    with pytest.raises(WaitTimeoutError, match="status=pending") as info:
        client.wait_block_active("x", deadline_s=20)
    assert info.value.last_state.status == "pending"
    assert sum(fake_time.sleeps) == pytest.approx(20.0)
    assert fake_time.sleeps[-1] == 5.0  # the last sleep is cut to land on the deadline


@pytest.mark.parametrize("status", ["suspended", "failed"])
def test_wait_fails_on_a_failed_state(stub, client, status):
    # "failed": a deploy Vultr gave up on (dstack's Vultr backend reads it so).
    _states(stub, "/instances/x", "instance", [{"status": "pending"}, {"status": status}])
    with pytest.raises(WaitFailedError, match=f"the instance is {status}") as info:
        client.wait_instance_ready("x")
    assert info.value.last_state.status == status


def test_client_from_env_and_settings(stub):
    client = VultrClient.from_env({"VULTR_API_URL": stub.url + "/", "VULTR_KEY": "k" * 20})
    assert client.http.base_url == stub.url
    assert repr(client) == f"VultrClient(VultrHttp(base_url='{stub.url}', key=set))"
    stub.add("GET", "/account", stub.Reply(200, {"account": {"name": "A"}}))
    with client:
        assert client.get_account().name == "A"
    keyless = VultrClient.from_settings(VultrSettings(api_url=stub.url))
    with pytest.raises(ConfigError, match="VULTR_KEY is not set"):
        keyless.get_account()


@pytest.mark.parametrize(
    "kwargs", [{"initial": 0}, {"factor": 0.5}, {"initial": 5.0, "max_interval": 1.0}]
)
def test_poll_policy_rejects_nonsense(kwargs):
    with pytest.raises(ValueError):
        PollPolicy(**kwargs)
