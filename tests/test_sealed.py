"""The suite's seal holds: no credentials leak in, nothing but loopback can be reached."""

from __future__ import annotations

import os
import socket

import pytest
from support.seal import NetworkSealed


def test_credentials_and_proxies_are_scrubbed():
    leaked = [n for n in os.environ
              if n.startswith(("VULTR_", "B2_", "AWS_", "WANDB_")) or n.lower().endswith("_proxy")]
    assert leaked == []


@pytest.mark.parametrize("address", [("192.0.2.1", 443), ("10.0.0.1", 80), ("8.8.8.8", 53)])
def test_connecting_elsewhere_fails_before_any_packet(address):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, \
            pytest.raises(NetworkSealed, match="loopback"):
        sock.connect(address)


def test_resolving_a_public_name_fails():
    with pytest.raises(NetworkSealed):
        socket.getaddrinfo("api.vultr.com", 443)


def test_loopback_still_works():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=2):
            conn, _ = server.accept()
            conn.close()
