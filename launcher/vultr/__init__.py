"""The Vultr API layer: the only code in the launcher that speaks HTTP (``requests``).

- :class:`VultrClient`: one typed method per endpoint, plus waits.
- :class:`VultrHttp`: the session and the one request method (auth, timeouts, retries, errors,
  pagination).
- :func:`retry_decision`: the retry rules as a pure function.
- records: frozen dataclasses built from API dicts.
"""

from .client import VultrClient
from .config import VultrSettings, validate_api_url
from .envelope import AUTH_HINT, UnconfirmedWriteError
from .jsonhttp import USER_AGENT, Timeouts
from .records import (
    FULL_CARD_VRAM_GB,
    Account,
    Availability,
    Block,
    Instance,
    InstanceVpc,
    MetalPlan,
    Plan,
    Region,
    Snapshot,
    SshKey,
    User,
    Vpc,
)
from .retry import (
    Decision,
    FailureKind,
    Outcome,
    RetryPolicy,
    backoff_delay,
    parse_retry_after,
    retry_decision,
)
from .specs import BlockSpec, InstanceSpec
from .transport import DEFAULT_API_URL, VultrHttp
from .waits import PollPolicy, wait_for

__all__ = [
    "AUTH_HINT",
    "DEFAULT_API_URL",
    "FULL_CARD_VRAM_GB",
    "USER_AGENT",
    "Account",
    "Availability",
    "Block",
    "BlockSpec",
    "Decision",
    "FailureKind",
    "Instance",
    "InstanceSpec",
    "InstanceVpc",
    "MetalPlan",
    "Outcome",
    "Plan",
    "PollPolicy",
    "Region",
    "RetryPolicy",
    "Snapshot",
    "SshKey",
    "Timeouts",
    "UnconfirmedWriteError",
    "User",
    "VultrClient",
    "VultrHttp",
    "VultrSettings",
    "Vpc",
    "backoff_delay",
    "parse_retry_after",
    "retry_decision",
    "validate_api_url",
    "wait_for",
]
