"""A quick look at the bucket's endpoint before anything is uploaded or created.

s5cmd retries a refused connection for more than a minute per attempt, so a wrong endpoint
would keep a launch waiting for minutes before saying so. One TCP connection with a short
timeout tells a person at once. (It proves the port answers, not the key: the upload that
follows does that, still before any Vultr create.)
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from launcher.errors import ApiError, ConfigError

CONNECT_TIMEOUT_S = 10.0


def check_reachable(endpoint_url: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Raise ApiError (one line, naming the endpoint) when nothing answers there."""
    parts = urlsplit(endpoint_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"storage.endpoint_url {endpoint_url!r}: expected an http(s) URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ConfigError(f"storage.endpoint_url {endpoint_url!r}: bad port") from None
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            return
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
    raise ApiError(f"bucket: cannot reach {endpoint_url} ({reason}); nothing was created",
                   hint="check B2_S3_ENDPOINT (or storage.endpoint_url) and the network")
