"""The configuration's JSON Schemas (``configs/schema/``, draft 2020-12) and one-line errors.

:func:`describe` turns a schema error into ``field <dotted.path>: expected <what>``;
:func:`check_value` checks one value that did not come from a file (a flag, an environment
variable) against the schema fragment that governs the same field, so a flag and a file
field are held to one rule and explained in the same words.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource

from launcher.errors import ConfigError
from launcher.resources import schema_dir

SCHEMA_DIR = schema_dir()
SCHEMA_BASE = "https://launcher.invalid/configs/"
JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer",
              float: "number", type(None): "null"}
BOUNDS = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
COUNTS = {"minItems": ("at least", "item"), "maxItems": ("at most", "item"),
          "minLength": ("at least", "character"), "maxLength": ("at most", "character")}


def _finite_number(checker: Any, instance: Any) -> bool:
    # JSON has no NaN or infinity, but YAML (.nan, .inf) and float("nan") do; NaN passes
    # every bound (each comparison is false), so it is refused as a type, everywhere.
    return (Draft202012Validator.TYPE_CHECKER.is_type(instance, "number")
            and (not isinstance(instance, float) or math.isfinite(instance)))


# Draft 2020-12 where a number is a finite number.
FiniteValidator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("number", _finite_number))


@lru_cache(maxsize=4)
def _registry(schema_dir: Path) -> tuple[Registry, dict[str, Any]]:
    schemas = {p.name: json.loads(p.read_text(encoding="utf-8"))
               for p in sorted(schema_dir.glob("*.schema.json"))}
    for schema in schemas.values():
        Draft202012Validator.check_schema(schema)
    registry = Registry().with_resources(
        (s["$id"], Resource.from_contents(s)) for s in schemas.values())
    return registry, schemas


@lru_cache(maxsize=8)
def validator(schema_name: str, schema_dir: Path = SCHEMA_DIR) -> Draft202012Validator:
    """A validator for ``schema_dir/schema_name`` that resolves refs between the schemas."""
    registry, schemas = _registry(schema_dir)
    return FiniteValidator(schemas[schema_name], registry=registry)


@lru_cache(maxsize=64)
def fragment_validator(ref: str) -> Draft202012Validator:
    """A validator for one fragment, ``ref`` like ``launcher.schema.json#/$defs/regions``."""
    registry, _ = _registry(SCHEMA_DIR)
    return FiniteValidator({"$ref": SCHEMA_BASE + ref}, registry=registry)


def first_error(schema_name: str, data: Any) -> ValidationError | None:
    return best_match(validator(schema_name).iter_errors(data))


def check_value(value: Any, ref: str, label: str) -> None:
    """Raise ConfigError ``<label>: expected ...`` unless ``value`` fits schema ``ref``."""
    error = best_match(fragment_validator(ref).iter_errors(value))
    if error is not None:
        where, text = explain(error)
        suffix = "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in where)
        raise ConfigError(f"{label}{suffix}: {text}")


def describe(error: ValidationError) -> str:
    """``field <dotted.path>: expected <what>`` for one schema error, on one line."""
    where, text = explain(error)
    return f"field {'.'.join(where) or '(top level)'}: {text}"


def explain(error: ValidationError) -> tuple[list[str], str]:
    """The field's path (as strings) and what was expected, for one schema error."""
    path = [str(p) for p in error.absolute_path]
    what, rule, instance = error.validator, error.validator_value, error.instance
    if what == "required":
        missing = next((k for k in rule if k not in instance), rule[0])
        return path + [missing], "missing (required)"
    if what == "additionalProperties" and isinstance(instance, dict):
        known = sorted(error.schema.get("properties", {}))
        extra = sorted(str(key) for key in instance if key not in known)  # YAML keys: any type
        expected = f"one of {', '.join(known)}" if known else "no such field"
        return path + extra[:1], f"unknown field (expected {expected})"
    got = JSON_TYPES.get(type(instance), type(instance).__name__)
    if isinstance(instance, float) and not math.isfinite(instance):
        got = f"{instance} (not a finite number)"
    if what == "type":
        return path, f"expected {_either(rule)}, got {got}"
    if what == "enum":
        return path, f"expected one of {', '.join(map(str, rule))}"
    if what in ("pattern", "not"):
        return path, _in_words(error.schema, instance)
    if what in BOUNDS:
        return path, f"expected a number {BOUNDS[what]} {rule}, got {instance}"
    if what in COUNTS:
        bound, unit = COUNTS[what]
        return path, f"expected {bound} {rule} {unit}{'' if rule == 1 else 's'}"
    if what == "uniqueItems":
        return path, "expected no repeated items"
    message = error.message if len(error.message) < 160 else error.message[:157] + "..."
    return path, message


def _in_words(schema: Any, instance: Any) -> str:
    """What a ``pattern`` (or ``not``) rule wants, in the words and example the schema gives
    beside it (``x-expected``, ``examples``): a regular expression is never shown."""
    words = schema.get("x-expected") if isinstance(schema, dict) else None
    if not words:
        return f"{instance!r} is not allowed here"
    examples = schema.get("examples") or []
    example = f", e.g. {examples[0]}" if examples else ""
    return f"expected {words}{example}; got {instance!r}"


def _either(rule: Any) -> str:
    return " or ".join(rule) if isinstance(rule, list) else str(rule)
