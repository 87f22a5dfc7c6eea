"""The Vast.ai API layer: the only code in the launcher that speaks to Vast.ai, over the one
request path the Vultr layer uses too (:class:`launcher.vultr.jsonhttp.JsonHttp`: timeouts,
attempt deadlines, the one retry table, no blind repeat of a mutation).

- :class:`VastClient`: one typed method per endpoint, plus waits.
- :class:`VastHttp`: Vast's URLs, error bodies and keyset pages on that path.
- :class:`OfferQuery`, :class:`InstanceSpec`: what is asked, checked before it is sent.
- records: frozen dataclasses built from API dicts.

Endpoints used (base ``VAST_API_URL``, ``https://console.vast.ai/api/v0``; auth ``Authorization:
Bearer <key>``, vast-ai/docs ``api-reference/authentication.mdx``), each with the vast-cli
function that calls it (vast-ai/vast-cli) and its reference (vast-ai/docs
``api-reference/openapi/yaml/``):

- ``POST /bundles/``: vast-cli ``vastai/api/offers.py`` search_offers;
  ``search_offers.yaml``.
- ``PUT /asks/{offer_id}/``: ``vastai/api/instances.py`` create_instance;
  ``create_instance.yaml``.
- ``GET /api/v1/instances/``: ``vastai/api/instances.py`` show_instances, show_instances_v1;
  ``show_instances.yaml``.
- ``GET /instances/{id}/?owner=me``: ``vastai/api/instances.py`` show_instance;
  ``show_instance.yaml``.
- ``DELETE /instances/{id}/``: ``vastai/api/instances.py`` destroy_instance;
  ``destroy_instance.yaml``.
- ``PUT /instances/request_logs/{id}/``: ``vastai/api/instances.py`` logs; ``logs.yaml``.
- ``GET <result_url>`` (another host, no key): ``vastai/api/instances.py``
  _poll_result_url; ``logs.yaml``.
- ``GET /users/current``: ``vastai/api/billing.py`` show_user; ``show_user.yaml``.
- ``GET /ssh/``: ``vastai/api/keys.py`` show_ssh_keys; ``show_ssh_keys.yaml``.
- ``POST /ssh/``: ``vastai/api/keys.py`` create_ssh_key; ``create_ssh_key.yaml``.

Where the two sources differ, vast-cli (the code known to work against the service) is
followed: ``env`` as a JSON object (the reference: a Docker-flag string); offer type
``on-demand`` (the reference's enum: ``ondemand``); trailing slashes on
``/instances/request_logs/{id}/`` and none on ``/users/current``.
"""

from .client import INSTANCE_POLL, VastClient
from .config import DEFAULT_API_URL, VastSettings
from .envelope import AUTH_HINT
from .records import CreatedInstance, Instance, LogRequest, Offer, SshKey, User
from .specs import InstanceSpec, OfferQuery
from .transport import VastHttp

__all__ = [
    "AUTH_HINT",
    "DEFAULT_API_URL",
    "INSTANCE_POLL",
    "CreatedInstance",
    "Instance",
    "InstanceSpec",
    "LogRequest",
    "Offer",
    "OfferQuery",
    "SshKey",
    "User",
    "VastClient",
    "VastHttp",
    "VastSettings",
]
