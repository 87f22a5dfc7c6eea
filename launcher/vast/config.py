"""Settings of the Vast.ai API layer, read from the environment.

``VAST_API_URL`` (default ``https://console.vast.ai/api/v0``: the base every Vast endpoint
hangs off; the few that live under ``/api/v1/`` are reached from the same setting, see
:class:`~launcher.vast.transport.VastHttp`), ``VAST_API_KEY`` (the API key, a
:class:`~launcher.secrets.Secret`), ``VAST_CONNECT_TIMEOUT`` and ``VAST_READ_TIMEOUT``
(seconds; one attempt may take 60 s in all, or a connect and a read timeout when that is
longer). A missing key is not an error here: a call that needs one raises ``ConfigError``
naming ``VAST_API_KEY``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from launcher.errors import ConfigError
from launcher.secrets import Secret
from launcher.vultr.config import timeouts_from_env, validate_api_url
from launcher.vultr.jsonhttp import Timeouts

KEY_VARIABLE = "VAST_API_KEY"
URL_VARIABLE = "VAST_API_URL"
DEFAULT_API_URL = "https://console.vast.ai/api/v0"
# The versioned API root at the end of the base URL: what /api/v1/ paths replace.
VERSIONED = re.compile(r"^(?P<root>.*)/api/v\d+$")


def api_root(base_url: str) -> str:
    """The origin (and any prefix) above ``/api/vN`` in ``base_url``, or ConfigError."""
    match = VERSIONED.match(base_url)
    if not match:
        raise ConfigError(
            f"{URL_VARIABLE} must end in /api/v0 (Vast's API root), not {base_url!r}",
            hint=f"{URL_VARIABLE}={DEFAULT_API_URL}",
        )
    return match["root"]


@dataclass(frozen=True)
class VastSettings:
    """Where the API is, the key (a Secret, or None) and the HTTP timeouts."""

    api_url: str = DEFAULT_API_URL
    api_key: Secret | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> VastSettings:
        env = os.environ if environ is None else environ
        key = env.get(KEY_VARIABLE, "").strip()
        url = validate_api_url(env.get(URL_VARIABLE, "") or DEFAULT_API_URL, URL_VARIABLE)
        api_root(url)
        return cls(api_url=url, api_key=Secret(key) if key else None,
                   timeouts=timeouts_from_env(env, "VAST"))
