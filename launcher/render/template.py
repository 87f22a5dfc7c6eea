"""The document's static parts, loaded from ``cloud-init/run.yaml`` and filled with data.

The template is YAML parsed by ``yaml.safe_load``; the renderer never edits YAML text. A
string value that is exactly ``${name}`` is replaced by ``values[name]``; a ``${`` anywhere
else, or an unknown name, is an error, so a typo cannot ship a literal placeholder. Each entry
of ``files`` and ``fetched`` whose path is literal is also a value under its own name
(``${runner}`` is the runner's path), so a path is written down once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from launcher.resources import template_path

TEMPLATE_PATH = template_path()
PLACEHOLDER = re.compile(r"^\$\{([a-z_]+)\}$")
ROOT = "root:root"  # the bootstrap runs as root: what it fetches is root's


class TemplateError(ValueError):
    """The template file is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class FileSpec:
    """Where one write_files entry goes, whose it is and its mode (a quoted octal string)."""

    path: str
    owner: str
    permissions: str


@dataclass(frozen=True)
class Template:
    """``cloud_config``: the static top-level keys; ``files``: what the document writes (boot,
    boot_spec, secrets); ``fetched``: what the bootstrap fetches (runner, spec), root's;
    ``unit_files``: where units go; ``units``: unit name -> section -> key -> value."""

    cloud_config: dict[str, Any]
    files: dict[str, FileSpec]
    fetched: dict[str, FileSpec]
    unit_files: FileSpec
    units: dict[str, dict[str, dict[str, Any]]]


def load_template(path: Path = TEMPLATE_PATH, values: Mapping[str, str] | None = None) -> Template:
    """Load the template and replace every ``${name}`` value from ``values``."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateError(f"{path}: cannot be read as YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise TemplateError(f"{path}: expected a mapping at the top level")
    data = substitute(raw, {**_own_paths(raw), **(values or {})}, str(path))
    missing = sorted({"cloud_config", "files", "fetched", "unit_files", "units"} - set(data))
    if missing:
        raise TemplateError(f"{path}: missing key(s) {', '.join(missing)}")
    files = {name: _file_spec(entry, f"{path}: files.{name}")
             for name, entry in data["files"].items()}
    if sorted(files) != ["boot", "boot_spec", "secrets"]:
        raise TemplateError(f"{path}: files must be exactly boot, boot_spec and secrets")
    fetched = {name: _file_spec({"owner": ROOT, **entry} if isinstance(entry, dict) else entry,
                                f"{path}: fetched.{name}")
               for name, entry in data["fetched"].items()}
    if sorted(fetched) != ["runner", "spec"]:
        raise TemplateError(f"{path}: fetched must be exactly runner and spec")
    unit_files = data["unit_files"]
    if not isinstance(unit_files, dict) or "directory" not in unit_files:
        raise TemplateError(f"{path}: unit_files: expected a mapping with a directory")
    entry = dict(unit_files)
    entry["path"] = entry.pop("directory")
    units_at = _file_spec(entry, f"{path}: unit_files")
    return Template(dict(data["cloud_config"]), files, fetched, units_at, data["units"])


def substitute(value: Any, values: Mapping[str, str], where: str) -> Any:
    """A copy of ``value`` with every exact ``${name}`` string replaced (data, not text)."""
    if isinstance(value, dict):
        return {k: substitute(v, values, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, values, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        match = PLACEHOLDER.match(value)
        if not match:
            raise TemplateError(f"{where}: a placeholder must be a whole value, like ${{name}}")
        name = match.group(1)
        if name not in values:
            raise TemplateError(f"{where}: unknown placeholder ${{{name}}}")
        return values[name]
    return value


def _own_paths(raw: dict[str, Any]) -> dict[str, str]:
    entries = {**_mapping(raw.get("files")), **_mapping(raw.get("fetched"))}
    return {name: entry["path"] for name, entry in entries.items()
            if isinstance(entry, dict) and isinstance(entry.get("path"), str)
            and "${" not in entry["path"]}


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _file_spec(entry: Any, where: str) -> FileSpec:
    if not isinstance(entry, dict) or set(entry) != {"path", "owner", "permissions"}:
        raise TemplateError(f"{where}: expected exactly path, owner and permissions")
    if not all(isinstance(v, str) for v in entry.values()):
        raise TemplateError(f"{where}: path, owner and permissions must be strings "
                            "(quote octal modes: '0600')")
    return FileSpec(entry["path"], entry["owner"], entry["permissions"])
