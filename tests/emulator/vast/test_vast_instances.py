"""Create, show, list (v1 pages), manage, destroy, logs, billing, user and ssh keys."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from tests.emulator.vast.conftest import call, rent

OFFERS = [10_000_001 + i for i in range(16)]


def show(emu, instance_id, key=None):
    args = {} if key is None else {"key": key}
    status, body, _ = call(f"{emu.url}/instances/{instance_id}/", **args)
    assert status == 200
    return body["instances"]


def test_create_answers_the_contract_and_a_per_instance_key(vast):
    answer = rent(vast, label="run-1", env={"A": "1", "-p 8000:8000": "1"}, onstart="echo hi")
    assert answer["success"] is True and isinstance(answer["new_contract"], int)
    assert len(answer["instance_api_key"]) == 64
    row = show(vast, answer["new_contract"])
    assert row["label"] == "run-1" and row["image_uuid"] == "pytorch/pytorch"
    assert row["extra_env"] == [["A", "1"]] and row["onstart"] == "echo hi"
    assert row["disk_space"] == 20.0 and row["gpu_name"] == "RTX 4090"


def test_env_may_also_be_the_openapi_docker_flag_string(vast):
    answer = rent(vast, env="-e HF_TOKEN=hf_x -e MODEL='a b' -p 8000:8000")
    assert show(vast, answer["new_contract"])["extra_env"] == [["HF_TOKEN", "hf_x"],
                                                                ["MODEL", "a b"]]


@pytest.mark.parametrize("fields", [
    {"image": ""}, {"image": None}, {"disk": 7.5}, {"disk": "20"}, {"label": "x" * 257},
    {"onstart": "x" * 4000, "args": ["y" * 97]}, {"onstart": "x" * 4097},
    {"env": ["A=1"]}, {"env": {"A": "x" * 257}}, {"runtype": "telnet"}, {"args": "ls"},
])
def test_create_validates_its_fields(vast, fields):
    body = {"image": "pytorch/pytorch", "disk": 20, **fields}
    status, answer, _ = call(f"{vast.url}/asks/{OFFERS[0]}/", "PUT", body)
    assert status == 400 and answer["error"] == "invalid_args" and answer["success"] is False
    assert call(f"{vast.url}/instances/")[1]["instances_found"] == 0


def test_limits_are_inclusive(vast):
    rent(vast, OFFERS[0], label="x" * 256, onstart="x" * 4000, args=["y" * 96], disk=8)


def test_a_gone_offer_is_404_and_a_rented_one_410_with_vasts_texts(vast):
    vast.set_offer(OFFERS[1], gone=True)
    status, body, _ = call(f"{vast.url}/asks/{OFFERS[1]}/", "PUT", {"image": "x", "disk": 10})
    assert status == 404 and body["ask_id"] == OFFERS[1]
    assert body["msg"] == (f"error 404/3603: no_such_ask Instance type by id {OFFERS[1]} "
                           "is not available.")
    rent(vast, OFFERS[2])
    status, body, _ = call(f"{vast.url}/asks/{OFFERS[2]}/", "PUT", {"image": "x", "disk": 10})
    assert status == 410 and body["error"] == "no_such_ask"
    assert call(f"{vast.url}/asks/abc/", "PUT", {"image": "x"})[0] == 400


def test_status_goes_null_loading_running_and_stop_keeps_storage_billing(vast, clock):
    instance_id = rent(vast)["new_contract"]
    assert show(vast, instance_id)["actual_status"] is None
    clock.advance(1)
    assert show(vast, instance_id)["actual_status"] == "loading"
    clock.advance(2)
    row = show(vast, instance_id)
    assert (row["actual_status"], row["intended_status"], row["cur_state"]) == (
        "running", "running", "running")
    clock.advance(3600)
    running = vast.bill(instance_id)
    assert running.gpu_usd == pytest.approx(0.35) and running.storage_usd > 0
    url = f"{vast.url}/instances/{instance_id}/"
    assert call(url, "PUT", {"state": "stopped"})[1] == {"success": True}
    row = show(vast, instance_id)
    assert (row["actual_status"], row["intended_status"], row["cur_state"]) == (
        "stopped", "stopped", "stopped")
    assert row["instance"]["gpuCostPerHour"] == 0 and row["instance"]["diskHour"] > 0
    clock.advance(3600)
    stopped = vast.bill(instance_id)
    assert stopped.gpu_usd == pytest.approx(running.gpu_usd)
    assert stopped.storage_usd == pytest.approx(2 * running.storage_usd, rel=1e-3)
    assert call(url, "PUT", {"state": "running"})[0] == 200
    assert show(vast, instance_id)["actual_status"] is None
    assert call(url, "DELETE")[1] == {"success": True}
    clock.advance(3600)
    assert vast.bill(instance_id).destroyed and vast.bill(instance_id).total_usd == pytest.approx(
        stopped.total_usd, rel=1e-3)


def test_label_state_errors_and_a_gone_instance(vast):
    instance_id = rent(vast)["new_contract"]
    url = f"{vast.url}/instances/{instance_id}/"
    assert call(url, "PUT", {"label": "renamed"})[0] == 200
    assert show(vast, instance_id)["label"] == "renamed"
    assert call(url, "PUT", {"label": "x" * 1025})[1]["error"] == "label_too_long"
    assert call(url, "PUT", {"state": "frozen"})[0] == 400
    assert call(url, "DELETE")[0] == 200
    status, body, _ = call(url, "DELETE")
    assert status == 404 and body == {"success": False, "error": "not_found",
                                      "msg": "Instance not found"}
    assert show(vast, instance_id) is None
    assert call(url, "PUT", {"state": "stopped"})[1]["error"] == "no_such_instance"


def page(emu, **params):
    query = "&".join(f"{k}={quote(v if isinstance(v, str) else json.dumps(v))}"
                     for k, v in params.items())
    status, body, _ = call(f"{emu.base}/api/v1/instances/?{query}")
    assert status == 200, body
    return body


def test_v1_list_pages_by_25_with_next_token_and_filters_on_label(vast):
    for offer in OFFERS:
        first = rent(vast, offer, label="gone")["new_contract"]
        assert call(f"{vast.url}/instances/{first}/", "DELETE")[0] == 200
        rent(vast, offer, label="mine" if offer % 2 else "other")
    body = page(vast)
    assert body["instances_found"] == 16 and body["next_token"] is None
    assert body["label_counts"] == {"mine": 8, "other": 8}
    seen, params = [], {"limit": 3, "select_filters": {"label": {"eq": "mine"}}}
    while True:
        body = page(vast, **params)
        assert body["total_instances"] == 8 and body["instances_found"] <= 3
        seen += [row["id"] for row in body["instances"]]
        if not body["next_token"]:
            break
        params["after_token"] = body["next_token"]
    assert seen == sorted(seen) and len(seen) == 8
    desc = page(vast, order_by=[{"col": "id", "dir": "desc"}], limit=50)["instances"]
    assert [r["id"] for r in desc] == sorted((r["id"] for r in desc), reverse=True)
    assert len(desc) == 16
    status, body, _ = call(f"{vast.base}/api/v1/instances/?after_token=!!")
    assert status == 400 and body["error"] == "invalid_token"
    status, body, _ = call(f"{vast.base}/api/v1/instances/?select_filters="
                           + quote('{"dph_total": {"lt": 1}}'))
    assert status == 400 and "dph_total is not a valid search key" in body["msg"]


def test_request_logs_serves_a_result_url_after_a_delay(vast, clock):
    instance_id = rent(vast)["new_contract"]
    vast.append_log(instance_id, "one\ntwo\nthree")
    status, body, _ = call(f"{vast.url}/instances/request_logs/{instance_id}/", "PUT",
                           {"tail": "2"})
    assert status == 200 and body["result_url"].startswith(vast.base + "/instance_logs/")
    assert call(body["result_url"], key=None)[0] == 404
    clock.advance(1)
    assert call(body["result_url"], key=None)[:2] == (200, "two\nthree\n")
    status, body, _ = call(f"{vast.url}/instances/request_logs/999/", "PUT", {})
    assert status == 404 and body["error"] == "invalid_id"


def test_request_logs_without_tail_serves_the_last_1000_lines(vast, clock):
    """vast-cli ``logs --tail``: "Number of lines to show from the end of the logs (default
    '1000')"; a tail given still wins, and a destroyed instance's lines are dropped."""
    instance_id = rent(vast)["new_contract"]
    vast.append_log(instance_id, "".join(f"line {n}\n" for n in range(1, 1201)))
    served = {}
    for name, body in (("default", {}), ("tail", {"tail": "1100"})):
        status, answer, _ = call(f"{vast.url}/instances/request_logs/{instance_id}/", "PUT",
                                 body)
        assert status == 200, answer
        served[name] = answer["result_url"]
    clock.advance(1)
    text = call(served["default"], key=None)[1]
    assert text.splitlines() == [f"line {n}" for n in range(201, 1201)]
    assert call(served["tail"], key=None)[1].splitlines()[0] == "line 101"

    vast.container_output(str(instance_id), "still here")
    assert vast.state.logs[instance_id][-1] == "still here"
    assert call(f"{vast.url}/instances/{instance_id}/", "DELETE")[0] == 200
    vast.container_output(str(instance_id), "after the destroy")  # dropped, never raises


def test_user_and_ssh_keys(vast):
    user = call(f"{vast.url}/users/current/")[1]
    assert {"id", "email", "balance", "ssh_key"} <= set(user)
    assert call(f"{vast.url}/users/current")[0] == 200  # vast-cli's spelling, no slash
    created = call(f"{vast.url}/ssh/", "POST", {"ssh_key": "ssh-ed25519 AAAA x@y"})[1]
    assert created["success"] and created["key"]["public_key"] == "ssh-ed25519 AAAA x@y"
    listed = call(f"{vast.url}/ssh/")[1]
    assert [k["key"] for k in listed] == ["ssh-ed25519 AAAA x@y"]
    assert call(f"{vast.url}/ssh/", "POST", {})[1]["error"] == "no_ssh_key"
    assert call(f"{vast.url}/ssh/{created['key']['id']}/", "DELETE")[0] == 200
    status, body, _ = call(f"{vast.url}/ssh/{created['key']['id']}/", "DELETE")
    assert (status, body["error"]) == (400, "no_ssh_key")


def test_v1_pages_hold_at_most_25_and_a_limit_below_1_means_5():
    from launcher.emulator.vast.listing import list_v1
    from launcher.emulator.wire import Request

    views = [{"id": n, "label": None} for n in range(1, 61)]

    def first(limit):
        query = {} if limit is None else {"limit": [str(limit)]}
        return list_v1(views, Request("GET", "/api/v1/instances/", query, {}, b"", "127.0.0.1"))

    assert first(None)["instances_found"] == 25 and first(100)["instances_found"] == 25
    assert first(0)["instances_found"] == 5 and first(-3)["instances_found"] == 5
    assert first(None)["label_counts"] == {"": 60} and first(None)["total_instances"] == 60


def test_a_direct_runtype_publishes_its_ports_once_it_runs(vast, clock):
    direct = rent(vast, runtype="ssh_direct")["new_contract"]
    jupyter = rent(vast, 10_000_002, runtype="jupyter_direct")["new_contract"]
    proxy = rent(vast, 10_000_003, runtype="ssh_proxy")["new_contract"]
    assert "ports" not in show(vast, direct)  # show_instances.yaml: only on running ones
    clock.advance(3)
    assert show(vast, direct)["ports"] == {"22/tcp": [{"HostIp": "0.0.0.0",
                                                       "HostPort": "20000"}]}
    assert set(show(vast, jupyter)["ports"]) == {"22/tcp", "8080/tcp"}
    assert show(vast, proxy)["ports"] == {}  # a proxy runtype provisions no port
    row = show(vast, proxy)
    assert (row["ssh_host"], row["ssh_port"]) == (row["public_ipaddr"], 22)
