"""One method per Vast.ai endpoint the launcher uses: wire only, no policy.

Methods return the typed records of :mod:`launcher.vast.records` (lists as tuples, every page
read). A create never buys twice: an ambiguous failure is settled by listing instances by
the spec's label (:func:`launcher.vultr.mutations.create_resolved`, the same rule as
Vultr's), so a label must be unique per run. The endpoints and their sources are listed in
:mod:`launcher.vast`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from launcher.errors import ApiError, AuthError, ConfigError, NotFoundError
from launcher.vultr.config import validate_api_url
from launcher.vultr.jsonhttp import seg as _seg
from launcher.vultr.mutations import create_resolved, delete_idempotent
from launcher.vultr.mutations import only as _only
from launcher.vultr.waits import PollPolicy, wait_for

from .config import KEY_VARIABLE, VastSettings
from .records import CreatedInstance, Instance, LogRequest, Offer, SshKey, User
from .specs import InstanceSpec, OfferQuery
from .transport import VastHttp

INSTANCES_V1 = "/api/v1/instances/"
# show_instance.yaml ``x-rate-limit: threshold: 2.0`` (one look every 2 s at most);
# hello-world.mdx: "Poll every 10 seconds".
INSTANCE_POLL = PollPolicy(initial=2.0, factor=1.3, max_interval=10.0)
# vast-cli polls a result_url every 0.3 s (vastai/api/instances.py ``_poll_result_url``).
LOG_POLL = PollPolicy(initial=0.3, factor=1.5, max_interval=3.0)




def _succeeded(data: dict | None, method: str, path: str) -> dict:
    """The answer, unless it says ``"success": false`` (with a 2xx status)."""
    data = data or {}
    if data.get("success") is False:
        said = data.get("msg") or data.get("error") or "no reason given"
        raise ApiError(f"Vast.ai answered success: false ({said})", method=method, path=path)
    return data


def _key_body(public_key: str) -> tuple[str, ...]:
    """An OpenSSH public key without its comment: ``(type, base64)``."""
    return tuple(public_key.split()[:2])


class VastClient:
    """Typed calls to Vast.ai's API over one :class:`VastHttp`."""

    def __init__(self, http: VastHttp, *, poll: PollPolicy | None = None,
                 log_poll: PollPolicy | None = None) -> None:
        self.http = http
        self.poll = poll or INSTANCE_POLL
        self.log_poll = log_poll or LOG_POLL

    @classmethod
    def from_settings(cls, settings: VastSettings, **http_options: Any) -> VastClient:
        http = VastHttp(settings.api_key, base_url=settings.api_url,
                        timeouts=settings.timeouts, key_variable=KEY_VARIABLE, **http_options)
        return cls(http)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **http_options: Any) -> VastClient:
        """A client configured from ``VAST_*`` variables (see :mod:`launcher.vast.config`)."""
        return cls.from_settings(VastSettings.from_env(environ), **http_options)

    def __repr__(self) -> str:
        return f"VastClient({self.http!r})"

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> VastClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- offers and instances -----------------------------------------------------------------

    def search_offers(self, query: OfferQuery) -> tuple[Offer, ...]:
        """``POST /bundles/``: a read, so it is retried like one."""
        data = self.http.request("POST", "/bundles/", json=query.body(), idempotent=True)
        offers = (data or {}).get("offers")
        if not isinstance(offers, list):
            raise ApiError("response has no 'offers' list", method="POST", path="/bundles/")
        return tuple(Offer.from_api(d) for d in offers)

    def create_instance(self, offer_id: int, spec: InstanceSpec) -> CreatedInstance:
        """``PUT /asks/{offer_id}/``: rent the offer. An offer that is gone raises
        :class:`~launcher.errors.OutOfCapacityError`. Never two instances: after a timeout,
        a dropped connection or a 5xx the instance is looked for by label; found, it is the
        result (with no ``instance_api_key``); not found, the create is sent again within
        the same retry budget, and once that is spent the error says none exists."""
        path = f"/asks/{_seg(offer_id)}/"
        what = f"instance labelled {spec.label!r}"

        def lookup() -> dict | None:
            rows = self.http.pages(INSTANCES_V1, "instances", _label_filter(spec.label))
            return _only([d for d in rows if d.get("label") == spec.label], what,
                         "instances")

        data = create_resolved(self.http, path, spec.body(), key="", lookup=lookup, what=what,
                               expect=(200,), method="PUT")
        return CreatedInstance.from_answer(_succeeded(data, "PUT", path))

    def list_instances(self, label: str | None = None) -> tuple[Instance, ...]:
        """``GET /api/v1/instances/``, every page; ``label`` is filtered by the server
        (``select_filters``) and matched exactly here again."""
        params = _label_filter(label) if label else {"order_by": [{"col": "id", "dir": "asc"}]}
        rows = (Instance.from_api(d) for d in self.http.pages(INSTANCES_V1, "instances", params))
        return tuple(i for i in rows if label is None or i.label == label)

    def get_instance(self, instance_id: int) -> Instance:
        """``GET /instances/{id}/``; an answer of ``{"instances": null}`` is not found."""
        path = f"/instances/{_seg(instance_id)}/"
        data = self.http.request("GET", path, params={"owner": "me"}) or {}
        row = data.get("instances")
        if row is None:
            raise NotFoundError(f"no instance {instance_id}", method="GET", path=path)
        return Instance.from_api(row)

    def destroy_instance(self, instance_id: int) -> bool:
        """``DELETE /instances/{id}/``; True if it existed, False if it was already gone."""
        return delete_idempotent(self.http, f"/instances/{_seg(instance_id)}/", expect=(200,))

    def wait_instance_running(self, instance_id: int, *, deadline_s: float = 900) -> Instance:
        """Until ``actual_status`` is ``running``; ``exited``, ``unknown`` or ``offline``
        fail the wait (hello-world.mdx: such an instance never reaches running)."""
        return wait_for(
            lambda: self.get_instance(instance_id),
            lambda i: i.is_running,
            deadline_s=deadline_s,
            what=f"instance {instance_id}",
            failed=lambda i: f"the instance is {i.actual_status}" if i.is_dead else None,
            poll=self.poll, sleep=self.http.sleep, clock=self.http.clock,
        )

    # -- logs ---------------------------------------------------------------------------------

    def request_logs(self, instance_id: int, tail: int | None = None, *,
                     deadline_s: float = 60.0) -> str:
        """``PUT /instances/request_logs/{id}/``, then the text at the ``result_url`` it
        names, polled until it is there (404/403 until then) or ``deadline_s`` passes. The
        result_url is on another host: fetched with the same timeouts and retries, and no
        key."""
        path = f"/instances/request_logs/{_seg(instance_id)}/"
        body = {"tail": str(tail)} if tail else {}
        answer = _succeeded(self.http.request("PUT", path, json=body), "PUT", path)
        url = LogRequest.from_api(answer).result_url
        if not url:
            raise ApiError("the answer names no result_url", method="PUT", path=path)
        return self._fetch_result(url, deadline_s, f"logs of instance {instance_id}")

    def _fetch_result(self, url: str, deadline_s: float, what: str) -> str:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        validate_api_url(origin, "the result_url")
        with self.http.with_base(origin) as host:

            def fetch() -> str | None:
                try:
                    return host.request_text("GET", parts.path or "/",
                                             params=parts.query or None, auth=False)
                except (NotFoundError, AuthError):  # not uploaded yet
                    return None

            return wait_for(fetch, lambda text: text is not None, deadline_s=deadline_s,
                            what=what, poll=self.log_poll, sleep=self.http.sleep,
                            clock=self.http.clock)

    # -- account ------------------------------------------------------------------------------

    def show_user(self) -> User:
        """``GET /users/current`` (vast-cli's path; show_user.yaml adds a trailing slash)."""
        data = self.http.request("GET", "/users/current")
        if not isinstance(data, dict):
            raise ApiError("response has no user object", method="GET", path="/users/current")
        return User.from_api(data)

    def list_ssh_keys(self) -> tuple[SshKey, ...]:
        """``GET /ssh/``: an array (show_ssh_keys.yaml), or ``{"ssh_keys": [...]}`` as
        vast-cli's tests stub it; both are read."""
        data = self.http.request_json("GET", "/ssh/")
        rows = data.get("ssh_keys") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise ApiError("response has no list of SSH keys", method="GET", path="/ssh/")
        return tuple(SshKey.from_api(d) for d in rows)

    def create_ssh_key(self, public_key: str) -> SshKey:
        """``POST /ssh/`` ``{"ssh_key": ...}``; never two: an ambiguous create is settled by
        looking for a key with the same type and body."""
        if len(_key_body(public_key)) < 2:
            raise ConfigError("an SSH public key reads '<type> <base64> [comment]'")
        body = _key_body(public_key)
        what = "SSH key " + body[0]

        def lookup() -> dict | None:
            found = [{"key": k.public_key, "id": k.id} for k in self.list_ssh_keys()
                     if _key_body(k.public_key) == body]
            return found[0] if found else None

        data = create_resolved(self.http, "/ssh/", {"ssh_key": public_key.strip()}, key="",
                               lookup=lookup, what=what, expect=(200, 201))
        data = _succeeded(data, "POST", "/ssh/")
        return SshKey.from_api(data["key"] if isinstance(data.get("key"), dict) else data)


def _label_filter(label: str) -> dict[str, Any]:
    """The v1 list's query for one label, ordered as vast-cli's ``show_instances`` orders."""
    return {"select_filters": {"label": {"eq": label}},
            "order_by": [{"col": "id", "dir": "asc"}]}
