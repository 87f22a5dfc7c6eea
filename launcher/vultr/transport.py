"""Vultr's side of the one request path (:mod:`launcher.vultr.jsonhttp`): its error envelope
``{"error": ..., "status": N}``, its ``meta.links`` cursor pages, and the hint for a URL
without ``/v2``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from launcher.errors import ApiError

from .envelope import error_for_status, server_message
from .jsonhttp import JsonHttp, _Answer

DEFAULT_API_URL = "https://api.vultr.com/v2"
MAX_PER_PAGE = 500
MAX_PAGES = 10_000


def _next_cursor(page: dict) -> str:
    """``meta.links.next``; "" when absent or malformed (the last page)."""
    meta = page.get("meta")
    links = meta.get("links") if isinstance(meta, dict) else None
    cursor = links.get("next") if isinstance(links, dict) else None
    return str(cursor) if cursor else ""


class VultrHttp(JsonHttp):
    """The Vultr v2 API: ``{"error": ..., "status": N}`` errors and ``meta.links`` pages."""

    DEFAULT_URL = DEFAULT_API_URL
    KEY_VARIABLE = "VULTR_KEY"
    URL_VARIABLE = "VULTR_API_URL"
    PROVIDER = "Vultr"
    KEY_HINT = "<key from my.vultr.com: Account > API>"

    def paginate(
        self,
        path: str,
        list_key: str,
        params: Mapping[str, Any] | None = None,
        *,
        per_page: int = 100,
        auth: bool = True,
        max_pages: int = MAX_PAGES,
    ) -> Iterator[dict]:
        """Yield every item of a cursor-paged list (``meta.links.next``; empty or missing ends).

        A page without ``list_key`` is an error, never an empty list; a cursor seen twice or more
        than ``max_pages`` pages raise :class:`ApiError` rather than loop.
        """
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise ValueError(f"per_page must be 1..{MAX_PER_PAGE}")
        query = {**(params or {}), "per_page": per_page}
        seen: set[str] = set()
        for _ in range(max_pages):
            page = self.request("GET", path, params=query, auth=auth) or {}
            items = page.get(list_key)
            if not isinstance(items, list):
                raise ApiError(f"response has no {list_key!r} list", method="GET", path=path)
            yield from items
            cursor = _next_cursor(page)
            if not cursor:
                return
            if cursor in seen:
                raise ApiError(
                    "the server repeated a page cursor; stopped paging", method="GET", path=path
                )
            seen.add(cursor)
            query["cursor"] = cursor
        raise ApiError(f"more than {max_pages} pages; stopped paging", method="GET", path=path)

    def _status_error(self, method: str, path: str, answer: _Answer, attempts: int,
                      retry_after: float | None) -> ApiError:
        message = server_message(answer.body, answer.status, self._key)
        if attempts > 1:
            message = f"{message} (after {attempts} attempts)"
        error = error_for_status(method, path, answer.status, message, retry_after=retry_after)
        if answer.status == 404 and not urlsplit(self.base_url).path.endswith("/v2"):
            error.hint = (f"VULTR_API_URL is {self.base_url}, without /v2: Vultr's API (and "
                          f"the emulator) answer under /v2, e.g. {self.base_url}/v2")
        return error
