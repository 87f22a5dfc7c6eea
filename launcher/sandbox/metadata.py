"""The sandbox's metadata service: Vultr's ``/v1.json`` for each sandbox machine, on 127.0.0.1.

A real instance asks ``http://169.254.169.254/v1.json`` which instance it is. A sandbox
machine's ``run.json`` gets ``metadata_url = http://127.0.0.1:<port>/<instance-id>`` instead,
so its ``<metadata_url>/v1.json`` is ``/<instance-id>/v1.json`` here. One server per backend,
started on first use, in a daemon thread; :meth:`MetadataServer.stop` ends it. A machine that
was deleted is forgotten (404), as its real metadata service would be gone.

A virtual machine asks the real address, so it needs ``/v1.json`` at the root of a port of
its own: :meth:`MetadataServer.serve_instance` starts one more server pinned to one instance
(its document registered with :meth:`MetadataServer.register`, e.g. :func:`vultr_v1`, which
carries what cloud-init's Vultr datasource reads: the MAC of the first interface and the
user data), reached through the VM's forward of 169.254.169.254:80.

An instance on a VPC has one more entry in ``interfaces``: :func:`private_interface` builds it
as cloud-init's Vultr datasource reads it (canonical/cloud-init
cloudinit/sources/helpers/vultr.py, ``generate_interface``: every entry after the first is
configured statically from ``mac``, ``ipv4.address`` and ``ipv4.netmask``, and
``generate_interface_additional_addresses`` reads ``ipv4.additional`` and
``ipv6.additional`` of every entry). Its other keys are those of the private interface in
canonical/cloud-init tests/unittests/sources/test_vultr.py (``VULTR_V1_2``). A process
machine's document gets it through ``url_for(..., interfaces=...)``, a VM's through
``vultr_v1(..., private=...)``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

HOST = "127.0.0.1"


class _Nic(Protocol):
    """What :func:`private_interfaces` reads of an emulator ``PrivateInterface``."""

    vpc_id: str
    mac: str
    address: str
    netmask: str


def private_interface(mac: str, address: str, netmask: str, network_id: str = "") -> dict:
    """One private (VPC) entry of ``/v1.json`` ``interfaces``: ``mac`` lower case, ``address``
    and dotted ``netmask`` under ``ipv4``, no gateway; ``network_id`` the VPC's id (as
    ``network-v2-id``). The shape of ``VULTR_V1_2``'s private interface in canonical/cloud-init
    tests/unittests/sources/test_vultr.py."""
    return {
        "ipv4": {"additional": [], "address": address, "gateway": "", "netmask": netmask},
        "ipv6": {"additional": [], "network": "", "prefix": ""},
        "mac": mac.lower(), "network-type": "private", "network-v2-id": network_id,
    }


def private_interfaces(nics: Iterable[_Nic]) -> list[dict]:
    """:func:`private_interface` of each of an emulator instance's ``private`` interfaces."""
    return [private_interface(n.mac, n.address, n.netmask, n.vpc_id) for n in nics]


def vultr_v1(instance_id: str, *, region: str, hostname: str, mac: str,
             user_data: str, private: Sequence[dict] = ()) -> dict:
    """Vultr's ``/v1.json`` as cloud-init's Vultr datasource reads it: ``user_data`` is the
    decoded document (plain text), ``mac`` the first (public) interface's (lower case),
    ``private`` the entries of :func:`private_interface` that follow it."""
    return {
        "instance-v2-id": instance_id, "instanceid": instance_id, "hostname": hostname,
        "region": {"regioncode": region.upper()},
        "interfaces": [{"mac": mac.lower(), "network-type": "public",
                        "ipv4": {"additional": []}, "ipv6": {"additional": []}},
                       *private],
        "user-data": user_data, "vendor-data": "",
    }


class _Handler(BaseHTTPRequestHandler):
    documents: dict[str, dict]  # set on the subclass made per server
    lock: threading.Lock
    pinned: str = ""  # a server of one instance: /v1.json is that instance's
    served: dict[str, list[float]]  # instance id -> when its v1.json was served (epoch s)
    server_version = "launcher-sandbox-metadata"
    timeout = 10

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if self.pinned:
            parts = [self.pinned, *parts]
        with self.lock:
            document = self.documents.get(parts[0]) if len(parts) == 2 else None
        if document is None or parts[1] != "v1.json":
            self.send_error(404)
            return
        with self.lock:
            self.served.setdefault(parts[0], []).append(time.time())
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
        self._pinned: dict[str, tuple[ThreadingHTTPServer, threading.Thread]] = {}
        self._served: dict[str, list[float]] = {}

    def url_for(self, instance_id: str, region: str = "", hostname: str = "",
                interfaces: Sequence[dict] = ()) -> str:
        """Start the server if needed (bind is immediate), register, return the URL.
        ``interfaces``: the machine's private ones (:func:`private_interfaces`); a process
        machine has no public interface of its own, so they are all it lists."""
        with self._lock:
            self._documents[instance_id] = {
                "instance-v2-id": instance_id, "hostname": hostname,
                "region": {"regioncode": region.upper()},
                "interfaces": list(interfaces),
                "sandbox": "launcher.sandbox metadata service on 127.0.0.1"}
            server = self._server or self._start()
        return f"http://{HOST}:{server.server_address[1]}/{instance_id}"

    def register(self, instance_id: str, document: dict) -> None:
        """Serve ``document`` as ``instance_id``'s ``v1.json`` (replacing any earlier one)."""
        with self._lock:
            self._documents[instance_id] = document

    def served(self, instance_id: str) -> list[float]:
        """When ``instance_id``'s ``v1.json`` was answered (epoch seconds), oldest first."""
        with self._lock:
            return list(self._served.get(instance_id, ()))

    def serve_instance(self, instance_id: str) -> int:
        """Start (once) a server answering ``/v1.json`` with ``instance_id``'s document;
        its port on 127.0.0.1."""
        with self._lock:
            if instance_id not in self._pinned:
                self._pinned[instance_id] = self._serve(instance_id)
            return self._pinned[instance_id][0].server_address[1]

    def _start(self) -> ThreadingHTTPServer:
        self._server, self._thread = self._serve("")
        return self._server

    def _serve(self, pinned: str) -> tuple[ThreadingHTTPServer, threading.Thread]:
        handler = type("MetadataHandler", (_Handler,),
                       {"documents": self._documents, "lock": self._lock, "pinned": pinned,
                        "served": self._served})
        server = ThreadingHTTPServer((HOST, 0), handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  name=f"sandbox-metadata{'-' if pinned else ''}{pinned}",
                                  daemon=True)
        thread.start()
        return server, thread

    def forget(self, instance_id: str) -> None:
        """Answer 404 for ``instance_id`` from now on (quick: its server stops later)."""
        with self._lock:
            self._documents.pop(instance_id, None)

    def stop_instance(self, instance_id: str, timeout: float = 5.0) -> None:
        """Stop the server :meth:`serve_instance` started for ``instance_id`` (bounded)."""
        with self._lock:
            pinned = self._pinned.pop(instance_id, None)
        if pinned is not None:
            _shut(*pinned, timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close the socket (bounded)."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            pinned = list(self._pinned.values())
            self._pinned.clear()
        for each in pinned:
            _shut(*each, timeout)
        if server is not None and thread is not None:
            _shut(server, thread, timeout)


def _shut(server: ThreadingHTTPServer, thread: threading.Thread, timeout: float) -> None:
    server.shutdown()
    server.server_close()
    thread.join(timeout)
