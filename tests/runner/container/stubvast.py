"""A stub of the one Vast.ai call a container makes about itself, on 127.0.0.1.

``DELETE /api/v0/instances/{id}/`` with ``Authorization: Bearer <instance key>``, answered as
vast-ai/docs api-reference/openapi/yaml/destroy_instance.yaml says: 200 ``{"success": true}``,
404 ``not_found`` for an instance it does not hold, 401 for another key. ``failures`` queues
answers (status, body) to give first, e.g. a 429 ``rate_limit_exceeded``. Every request is
recorded (method, path, whether the key matched, body); ``on_delete`` is called with the
instance id after a destroy (a sandbox's ``instance_deleted``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from support.keys import FAKE_CONTAINER_KEY  # noqa: E402,F401 - every test output is scanned


@dataclass
class Call:
    method: str
    path: str
    key_ok: bool
    body: str


@dataclass
class StubVast:
    instances: set[str] = field(default_factory=set)
    key: str = FAKE_CONTAINER_KEY
    failures: list[tuple[int, dict]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    on_delete: Callable[[str], None] | None = None
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/v0"

    def deletes(self) -> list[str]:
        return [c.path for c in self.calls if c.method == "DELETE"]

    def start(self) -> StubVast:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_DELETE(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                key_ok = self.headers.get("Authorization") == f"Bearer {stub.key}"
                stub.calls.append(Call("DELETE", self.path, key_ok, body))
                status, answer = stub.answer(self.path, key_ok)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def answer(self, path: str, key_ok: bool) -> tuple[int, dict]:
        if self.failures:
            return self.failures.pop(0)
        if not key_ok:
            return 401, {"success": False, "error": "auth_error", "msg": "bad key"}
        parts = path.strip("/").split("/")
        if parts[:2] != ["api", "v0"] or len(parts) != 4 or parts[2] != "instances" \
                or not path.endswith("/"):
            return 400, {"success": False, "error": "invalid_args", "msg": path}
        iid = parts[3]
        if iid not in self.instances:
            return 404, {"success": False, "error": "not_found", "msg": "Instance not found"}
        self.instances.discard(iid)
        if self.on_delete is not None:
            self.on_delete(iid)
        return 200, {"success": True}

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
