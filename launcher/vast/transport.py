"""Vast.ai on the launcher's one request path (:class:`launcher.vultr.jsonhttp.JsonHttp`).

The timeouts, attempt deadlines, retries (the one retry table), progress lines and the
no-blind-repeat rule for mutations are that path's; what is Vast's here:

- where a path goes: ``/api/vN/...`` paths (the v1 instance list) hang off the host above
  ``VAST_API_URL``'s ``/api/v0``, every other path off ``VAST_API_URL`` itself, as vast-cli
  builds its URLs (vast-ai/vast-cli ``vastai/api/client.py``, ``VastClient._build_url``);
- query values that are not strings travel as JSON (``select_filters={"label": ...}``), as
  ``_build_url`` sends them;
- how errors read (:mod:`launcher.vast.envelope`);
- keyset pages (``limit``, ``after_token`` from the previous ``next_token``), as vast-cli's
  ``vastai/api/instances.py`` ``show_instances`` reads ``GET /api/v1/instances/``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any

from launcher.errors import ApiError
from launcher.vultr.jsonhttp import JsonHttp, _Answer

from .config import DEFAULT_API_URL, KEY_VARIABLE, URL_VARIABLE, api_root
from .envelope import error_for_status, server_message

log = logging.getLogger("launcher.vast")
VERSIONED_PATH = re.compile(r"^/api/v\d+/")
MAX_PAGES = 400  # 25 a page (show_instances.yaml): 10,000 instances
# show_instances.yaml ``x-rate-limit: threshold: 1.0``: at most one list request a second.
PAGE_INTERVAL_S = 1.0


def query(params: Mapping[str, Any]) -> dict[str, str]:
    """Query values as vast-cli sends them: strings as they are, anything else as JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}


class VastHttp(JsonHttp):
    """The session to Vast's API (``Authorization: Bearer <key>``, vast-ai/docs
    ``api-reference/authentication.mdx``) and its request methods."""

    DEFAULT_URL = DEFAULT_API_URL
    KEY_VARIABLE = KEY_VARIABLE
    URL_VARIABLE = URL_VARIABLE
    PROVIDER = "Vast.ai"
    KEY_HINT = "<key from https://cloud.vast.ai/manage-keys/>"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("logger", log)
        super().__init__(*args, **kwargs)
        self._routed = True

    def with_base(self, base_url: str) -> VastHttp:
        """A keyless session to another host whose paths are taken as they are."""
        other = super().with_base(base_url)
        other._routed = False
        return other

    def _url(self, path: str) -> str:
        if self._routed and VERSIONED_PATH.match(path):
            return api_root(self.base_url) + path
        return self.base_url + path

    def pages(self, path: str, list_key: str, params: Mapping[str, Any], *,
              limit: int = 25, max_pages: int = MAX_PAGES) -> Iterator[dict]:
        """Yield every item of a keyset-paged list: ``limit`` a page, ``after_token`` set
        from each page's ``next_token`` until it is null or empty.

        A page without ``list_key`` is an error, never an empty list; a token seen twice or
        more than ``max_pages`` pages raise :class:`ApiError` rather than loop.
        """
        sent = {**params, "limit": limit}
        seen: set[str] = set()
        for number in range(max_pages):
            if number:
                self.pause(PAGE_INTERVAL_S)
            page = self.request("GET", path, params=query(sent)) or {}
            items = page.get(list_key)
            if not isinstance(items, list):
                raise ApiError(f"response has no {list_key!r} list", method="GET", path=path)
            yield from items
            token = page.get("next_token")
            if not token:
                return
            if str(token) in seen:
                raise ApiError("the server repeated a page token; stopped paging",
                               method="GET", path=path)
            seen.add(str(token))
            sent["after_token"] = str(token)
        raise ApiError(f"more than {max_pages} pages; stopped paging", method="GET", path=path)

    def _status_error(self, method: str, path: str, answer: _Answer, attempts: int,
                      retry_after: float | None) -> ApiError:
        message = server_message(answer.body, answer.status, self._key)
        if attempts > 1:
            message = f"{message} (after {attempts} attempts)"
        return error_for_status(method, path, answer.status, answer.body, message,
                                retry_after=retry_after)
