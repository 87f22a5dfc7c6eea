"""The sandbox's metadata service: Vultr's ``/v1.json`` for each sandbox machine, on 127.0.0.1.

A real instance asks ``http://169.254.169.254/v1.json`` which instance it is. A sandbox
machine's ``run.json`` gets ``metadata_url = http://127.0.0.1:<port>/<instance-id>`` instead,
so its ``<metadata_url>/v1.json`` is ``/<instance-id>/v1.json`` here. One server per backend,
started on first use, in a daemon thread; :meth:`MetadataServer.stop` ends it. A machine that
was deleted is forgotten (404), as its real metadata service would be gone.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"


class _Handler(BaseHTTPRequestHandler):
    documents: dict[str, dict]  # set on the subclass made per server
    lock: threading.Lock
    server_version = "launcher-sandbox-metadata"
    timeout = 10

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        with self.lock:
            document = self.documents.get(parts[0]) if len(parts) == 2 else None
        if document is None or parts[1] != "v1.json":
            self.send_error(404)
            return
        body = json.dumps(document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base signature
        """Silent: the backend logs what matters."""


class MetadataServer:
    """``url_for(instance_id, region, hostname)`` registers a machine and returns its
    ``metadata_url``; ``forget(instance_id)`` drops it; ``stop()`` ends the server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._documents: dict[str, dict] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url_for(self, instance_id: str, region: str = "", hostname: str = "") -> str:
        """Start the server if needed (bind is immediate), register, return the URL."""
        with self._lock:
            self._documents[instance_id] = {
                "instance-v2-id": instance_id, "hostname": hostname,
                "region": {"regioncode": region.upper()},
                "sandbox": "launcher.sandbox metadata service on 127.0.0.1"}
            server = self._server or self._start()
        return f"http://{HOST}:{server.server_address[1]}/{instance_id}"

    def _start(self) -> ThreadingHTTPServer:
        handler = type("MetadataHandler", (_Handler,),
                       {"documents": self._documents, "lock": self._lock})
        server = ThreadingHTTPServer((HOST, 0), handler)
        server.daemon_threads = True
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="sandbox-metadata", daemon=True)
        self._thread.start()
        self._server = server
        return server

    def forget(self, instance_id: str) -> None:
        with self._lock:
            self._documents.pop(instance_id, None)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close the socket (bounded)."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout)
