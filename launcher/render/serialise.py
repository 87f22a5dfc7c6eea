"""The document dict -> ``#cloud-config`` YAML text, and the proof that it reads back equal.

``yaml.safe_dump`` does the quoting: strings that look like numbers, booleans or octal modes
(``'0600'``, ``'no'``) come out quoted, control characters and non-ASCII text are escaped (the
document is pure ASCII), and lines are never folded. Multi-line text (unit files, JSON) is
written as a literal block where YAML allows it, and argv lists in flow style, for a reader.
Whatever the style, :func:`to_cloud_config` parses the text back with ``yaml.safe_load`` (as
cloud-init does) and refuses to return text that does not give back the same data.
"""

from __future__ import annotations

from typing import Any

import yaml

HEADER = "#cloud-config\n"
NO_FOLDING = 1 << 30


class RoundTripError(ValueError):
    """The YAML text does not parse back to the data it was made from."""


# libyaml's emitter when PyYAML has it (the pure-Python one takes ~0.3 s on a 60 KB base64
# line); the check that the text loads back always uses the pure-Python safe loader, as
# cloud-init's own yaml.safe_load does.
_BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):
    """A safe dumper with readable styles; styles never change the data, only its look."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value.rstrip("\n") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _represent_list(dumper: yaml.SafeDumper, value: list) -> yaml.Node:
    flat = bool(value) and all(isinstance(v, str) and "\n" not in v and len(v) < 80
                               for v in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flat)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(list, _represent_list)


def to_cloud_config(document: dict[str, Any], *, verify: bool = True) -> str:
    """``#cloud-config`` text for ``document``, verified (unless ``verify`` is false) to load
    back to an equal dict."""
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=False, width=NO_FOLDING, explicit_start=False)
    text = HEADER + body
    if verify and load_cloud_config(text) != document:
        raise RoundTripError("the serialised document does not load back to the same data")
    return text


def load_cloud_config(text: str) -> Any:
    """Parse document text the way cloud-init does (YAML 1.1, safe loader)."""
    if not text.startswith(HEADER):
        raise RoundTripError("a cloud-config document must start with '#cloud-config'")
    return yaml.safe_load(text)
