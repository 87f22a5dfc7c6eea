"""The lenient record readers of :mod:`launcher.vultr._coerce` for Vast's answers.

:class:`VastRecord` builds a frozen dataclass from an API dict with the same readers, chosen
by each field's annotation (``field(metadata={"api": "name"})`` reads a differently named
key; ``metadata={"api": ("a", "b")}`` reads the first of several that is present); only the
message for an answer of the wrong shape names Vast.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

from launcher.errors import ApiError
from launcher.vultr._coerce import JSON_NAMES, READERS

R = TypeVar("R", bound="VastRecord")


def _key(d: dict, api: str | tuple[str, ...]) -> str:
    if isinstance(api, str):
        return api
    return next((name for name in api if d.get(name) is not None), api[0])


class VastRecord:
    """Mixin for frozen dataclasses read from Vast's API: unknown keys ignored, missing
    tolerated (neutral defaults or None, never invented values)."""

    @classmethod
    def from_api(cls: type[R], d: Any) -> R:
        if not isinstance(d, dict):  # a record that is not an object: the API changed shape
            raise ApiError(f"Vast.ai answered {JSON_NAMES.get(type(d), 'a value')} where a "
                           f"{cls.__name__} object belongs")
        # vast-cli strips every string of an instance row (vastai/api/instances.py,
        # ``_strip_strings``): ``local_ipaddrs`` ends in a newline (show_instance.yaml)
        d = {k: v.strip() if isinstance(v, str) else v for k, v in d.items()}
        values = {f.name: READERS[f.type](d, _key(d, f.metadata.get("api", f.name)))
                  for f in fields(cls) if f.init}
        return cls(**values)
