"""The project's own JSON Schema for the run document (``cloud-init/schema.json``).

Stricter than cloud-init's: it covers exactly the keys the renderer emits, refuses any other
key at every level, wants modes as quoted octal strings and runcmd entries as argv lists.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from launcher.resources import document_schema_path

SCHEMA_PATH = document_schema_path()


class SchemaViolation(ValueError):
    """The document breaks the schema; ``problems`` lists each as ``path: message``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("the run document breaks cloud-init/schema.json: " + "; ".join(problems))
        self.problems = problems


@lru_cache(maxsize=4)
def document_validator(path: Path = SCHEMA_PATH) -> Draft202012Validator:
    """The checked validator for the schema at ``path`` (loaded once)."""
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def validate_document(document: Any, path: Path = SCHEMA_PATH) -> None:
    """Raise :class:`SchemaViolation` unless ``document`` satisfies the schema.

    Messages name where and what, never the offending value: it may be a file's content.
    """
    errors = sorted(document_validator(path).iter_errors(document), key=lambda e: list(e.path))
    if errors:
        raise SchemaViolation([_describe(e) for e in errors[:10]])


def _describe(error) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        return f"{where}: unexpected key(s) " + ", ".join(
            sorted(set(error.instance) - set(error.schema.get("properties", {}))))
    rule = error.schema.get(error.validator) if isinstance(error.schema, dict) else None
    shown = rule if not isinstance(rule, (dict, list)) or len(str(rule)) < 80 else "..."
    return f"{where}: fails {error.validator} {shown!r}"
