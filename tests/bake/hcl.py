"""The Packer template as plain data: python-hcl2's parse with its quoting and markers removed.

python-hcl2 (8.x) keeps a string's quotes (``'"sjc"'``), block labels as quoted keys and adds
``__is_block__`` / ``__comments__`` keys; :func:`load` strips all of that, so a literal reads
``"sjc"`` and an expression ``"${var.region}"``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import hcl2

ROOT = Path(__file__).resolve().parents[2]
PACKER = ROOT / "packer"
TEMPLATE = PACKER / "gpu-image.pkr.hcl"
VARIABLES = PACKER / "variables.pkr.hcl"
REFERENCE = re.compile(r"\$\{(var|local)\.(\w+)\}")


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {_unquote(k): clean(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return _unquote(value) if isinstance(value, str) else value


def load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return clean(hcl2.load(handle))


def blocks(parsed: dict[str, Any], kind: str) -> dict[str, Any]:
    """``variable "x" {…}`` blocks as ``{"x": {…}}`` (one label), merged over the file."""
    merged: dict[str, Any] = {}
    for block in parsed.get(kind, []):
        merged.update(block)
    return merged


def render(expression: str, values: dict[str, str]) -> str:
    """Substitute ``${var.x}`` / ``${local.x}`` references from ``values`` (keyed ``var.x``)."""
    return REFERENCE.sub(lambda m: values[f"{m.group(1)}.{m.group(2)}"], expression)
