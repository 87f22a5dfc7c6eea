"""Vultr's metadata service as tests need it: ``/v1.json`` on 127.0.0.1, one document per
server. :class:`MetadataServers` starts them and stops every one it started."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Metadata(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        if self.path != "/v1.json":
            self.send_error(404)
            return
        body = json.dumps(self.server.document).encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class MetadataServers:
    """``serve(document) -> url``; ``close()`` stops them all."""

    def __init__(self) -> None:
        self._servers: list[ThreadingHTTPServer] = []

    def serve(self, document: dict) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Metadata)
        server.document = document  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self._servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
