"""A tiny requests client for the emulator tests (imported by conftest and the tests)."""

from __future__ import annotations

import requests
from support.keys import EMULATOR_TEST_KEY as EMU_KEY

TIMEOUT = 5.0
SNAPSHOT_ID = "5f0d2c1e-8a3b-4c6d-9e7f-0a1b2c3d4e5f"
A100_40 = "vcg-a100-6c-60g-40vram"


class Api:
    """requests against one emulator: paths are relative to ``/v2``; the key is optional."""

    def __init__(self, url: str, key: str | None = EMU_KEY) -> None:
        self.url = url
        self.session = requests.Session()
        if key is not None:
            self.session.headers["Authorization"] = f"Bearer {key}"

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT)
        return self.session.request(method, self.url + path, **kwargs)

    def get(self, path: str, **params) -> requests.Response:
        return self.call("GET", path, params=params)

    def post(self, path: str, body: dict | None = None) -> requests.Response:
        return self.call("POST", path, json=body if body is not None else {})

    def delete(self, path: str) -> requests.Response:
        return self.call("DELETE", path)

    def create_instance(self, **overrides) -> dict:
        body = {"region": "sea", "plan": A100_40, "snapshot_id": SNAPSHOT_ID,
                "label": "run-1", "tags": ["launcher-run:1"], **overrides}
        response = self.post("/instances", body)
        assert response.status_code == 202, response.text
        return response.json()["instance"]

    def create_block(self, **overrides) -> dict:
        body = {"region": "sea", "size_gb": 50, "label": "cache", "block_type": "high_perf",
                **overrides}
        response = self.post("/blocks", body)
        assert response.status_code == 202, response.text
        return response.json()["block"]


def refusal(response: requests.Response) -> tuple[int, str]:
    """(status, error text) of an error envelope, checking the envelope on the way."""
    body = response.json()
    assert response.headers["Content-Type"] == "application/json"
    assert set(body) == {"error", "status"} and body["status"] == response.status_code
    return response.status_code, body["error"]
