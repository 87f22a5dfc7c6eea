"""How s5cmd is found and what it sees: shared by the bootstrap and the runner's bucket wrapper.

Secrets reach s5cmd through its environment only (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``), never its command line: argv is readable by every user in
``/proc``. Standard library only (it travels in ``boot.pyz``).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping

DEFAULT_BINARY = "/usr/local/bin/s5cmd"
BINARY_ENV = "LAUNCHER_S5CMD"  # where s5cmd is, when not the default
B2_ENDPOINT = re.compile(r"^https://s3\.([a-z0-9-]+)\.backblazeb2\.com/?$")


def b2_region(endpoint_url: str) -> str:
    """``us-west-004`` from ``https://s3.us-west-004.backblazeb2.com``; else ``""``."""
    match = B2_ENDPOINT.match(endpoint_url)
    return match.group(1) if match else ""


def find_binary(env: Mapping[str, str]) -> str:
    """Where s5cmd is: ``$LAUNCHER_S5CMD`` in ``env``, else the image's
    ``/usr/local/bin/s5cmd``, else the first ``s5cmd`` on ``env``'s ``PATH``."""
    if env.get(BINARY_ENV):
        return env[BINARY_ENV]
    if os.access(DEFAULT_BINARY, os.X_OK):
        return DEFAULT_BINARY
    return shutil.which("s5cmd", path=env.get("PATH")) or DEFAULT_BINARY


def s5cmd_env(base: Mapping[str, str], key_id: str, app_key: str, region: str) -> dict[str, str]:
    """The environment s5cmd runs with: ``base`` minus any inherited ``AWS_*``, plus the key,
    the region and B2's checksum settings."""
    env = {k: v for k, v in base.items() if not k.startswith("AWS_")}
    env.update({
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": app_key,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_CONFIG_FILE": os.devnull,
        # B2 rejects the CRC32 checksum headers recent AWS SDKs send by default.
        "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
        "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
    })
    if region:
        env["AWS_REGION"] = region
    return env
