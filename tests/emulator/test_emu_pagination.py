"""Pagination: cursors walk every item once; per_page bounds; bad cursors are refused."""

from __future__ import annotations

import base64

import pytest

from .emuclient import refusal


@pytest.fixture
def many_keys(emu) -> set[str]:
    ids = {k.id for k in emu.state.list_ssh_keys()}
    for index in range(148):
        ids.add(emu.state.create_ssh_key(f"k{index}", f"ssh-ed25519 AAAA{index}").id)
    assert len(ids) == 150
    return ids


def _walk(api, per_page: int | None) -> tuple[list[str], list[dict]]:
    params = {} if per_page is None else {"per_page": per_page}
    seen, metas, cursor = [], [], ""
    for _ in range(200):  # bounded: far more pages than the data can need
        body = api.get("/ssh-keys", cursor=cursor, **params).json()
        seen += [k["id"] for k in body["ssh_keys"]]
        metas.append(body["meta"])
        cursor = body["meta"]["links"]["next"]
        if not cursor:
            return seen, metas
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize(("per_page", "pages"), [(None, 2), (7, 22), (150, 1), (1000, 1)])
def test_walking_cursors_sees_every_item_once(api, many_keys, per_page, pages):
    seen, metas = _walk(api, per_page)
    assert len(seen) == len(set(seen)) == 150 and set(seen) == many_keys
    assert len(metas) == pages
    assert all(m["total"] == 150 for m in metas)
    assert metas[0]["links"]["prev"] == "" and metas[-1]["links"]["next"] == ""


def test_prev_goes_back_one_page(api, many_keys):
    first = api.get("/ssh-keys", per_page=10).json()
    second = api.get("/ssh-keys", per_page=10, cursor=first["meta"]["links"]["next"]).json()
    back = api.get("/ssh-keys", per_page=10, cursor=second["meta"]["links"]["prev"]).json()
    assert back["ssh_keys"] == first["ssh_keys"]


def test_cursors_look_opaque(api, many_keys):
    cursor = api.get("/ssh-keys", per_page=10).json()["meta"]["links"]["next"]
    assert cursor and not cursor.isdigit() and "10" not in cursor


@pytest.mark.parametrize("per_page", ["abc", "0", "-1", "1.5"])
def test_bad_per_page_is_a_400(api, per_page):
    assert refusal(api.get("/ssh-keys", per_page=per_page))[0] == 400


@pytest.mark.parametrize("cursor", ["garbage!", "bm90LWEtY3Vyc29y",
                                    base64.urlsafe_b64encode(b"emu-cursor:v1:999").decode()])
def test_bad_cursor_is_a_400(api, cursor):
    assert refusal(api.get("/ssh-keys", cursor=cursor)) == (400, "Invalid cursor.")


def test_per_page_over_500_clamps(emu, api):
    for index in range(505):
        emu.state.create_ssh_key(f"k{index}", "ssh-ed25519 AAAA")
    body = api.get("/ssh-keys", per_page=9999).json()
    assert len(body["ssh_keys"]) == 500 and body["meta"]["total"] == 507
    assert body["meta"]["links"]["next"]


def test_every_list_is_paginated(emu, api):
    for path, key in [("/regions", "regions"), ("/plans", "plans"), ("/os", "os"),
                      ("/plans-metal", "plans_metal"), ("/users", "users"),
                      ("/instances", "instances"), ("/blocks", "blocks"),
                      ("/snapshots", "snapshots")]:
        body = api.get(path, per_page=1).json()
        assert len(body[key]) <= 1 and set(body["meta"]) == {"total", "links"}, path
