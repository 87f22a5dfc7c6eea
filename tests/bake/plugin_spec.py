"""The vultr plugin's argument spec, read from its generated Go source, and the kinds of value
the template gives its ``source "vultr"`` arguments.

``tests/data/packer/vultr-config.hcl2spec.go`` is the plugin's ``builder/vultr/
config.hcl2spec.go`` at the release the template pins (``PROVENANCE.md`` beside it): the
``FlatConfig.HCL2Spec`` map Packer decodes a ``source "vultr"`` block with. Its entries read

    "snapshot_id": &hcldec.AttrSpec{Name: "snapshot_id", Type: cty.String, Required: false},
    "foo": &hcldec.BlockSpec{TypeName: "foo", Nested: hcldec.ObjectSpec(...)},

and every line of that map must be one of these, so a change in the generator's output fails
loudly instead of dropping arguments. Kinds are coarse: string, number, bool, list, map, block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from .hcl import ROOT

DATA = ROOT / "tests" / "data" / "packer"
SPEC_FILE = DATA / "vultr-config.hcl2spec.go"
PROVENANCE = DATA / "PROVENANCE.md"

_FUNCTION = re.compile(
    r"^func \(\*FlatConfig\) HCL2Spec\(\) map\[string\]hcldec\.Spec \{\n"
    r"\s*s := map\[string\]hcldec\.Spec\{\n(?P<body>.*?)\n\s*\}\n\s*return s\n\}",
    re.MULTILINE | re.DOTALL)
_ATTR = re.compile(r'"(?P<key>\w+)":\s*&hcldec\.AttrSpec\{Name: "(?P<name>\w+)", '
                   r"Type: (?P<type>.+), Required: (?P<required>true|false)\},")
_BLOCK = re.compile(r'"(?P<key>\w+)":\s*&hcldec\.(?P<spec>Block(?:List|Set|Map)?Spec)\{'
                    r'TypeName: "(?P<name>\w+)"(?P<rest>.*)\},')
_CTY_KINDS = {"String": "string", "Number": "number", "Bool": "bool", "List": "list",
              "Set": "list", "Tuple": "list", "Map": "map", "Object": "map"}
# Values cty converts to the spec's type without loss: a number or bool where a string goes.
_SAFE_CONVERSIONS = {("number", "string"), ("bool", "string")}


@dataclass(frozen=True)
class Argument:
    name: str
    kind: str  # string | number | bool | list | map | block
    required: bool


def _cty_kind(expression: str) -> str:
    head = expression.strip().removeprefix("cty.").split("(", 1)[0]
    if head not in _CTY_KINDS:
        raise ValueError(f"unknown cty type {expression!r} in {SPEC_FILE.name}")
    return _CTY_KINDS[head]


def parse_spec(text: str) -> dict[str, Argument]:
    """``FlatConfig.HCL2Spec``'s entries, by argument name."""
    found = _FUNCTION.search(text)
    if not found:
        raise ValueError("no `func (*FlatConfig) HCL2Spec()` map in the spec file")
    arguments: dict[str, Argument] = {}
    for line in found.group("body").splitlines():
        line = line.strip()
        if not line:
            continue
        if attr := _ATTR.fullmatch(line):
            assert attr["key"] == attr["name"], line
            argument = Argument(attr["name"], _cty_kind(attr["type"]),
                                attr["required"] == "true")
        elif block := _BLOCK.fullmatch(line):
            assert block["key"] == block["name"], line
            argument = Argument(block["name"], "block", "Required: true" in block["rest"])
        else:
            raise ValueError(f"a spec line this parser does not know: {line}")
        arguments[argument.name] = argument
    return arguments


def spec_arguments(path: Path = SPEC_FILE) -> dict[str, Argument]:
    return parse_spec(path.read_text(encoding="utf-8"))


# -- the template's side (python-hcl2's raw parse: literal strings keep their quotes) -------

_EXPRESSION = re.compile(r"\$\{(?P<expr>.*)\}", re.DOTALL)
_REFERENCE = re.compile(r"(?P<scope>var|local)\.(?P<name>\w+)(?P<index>\[[^\]]+\])?")


def _quoted(value: str) -> bool:
    return len(value) >= 2 and value[0] == value[-1] == '"'


def _is_block(value: Any) -> bool:
    return (isinstance(value, list) and bool(value)
            and all(isinstance(v, dict) and v.get("__is_block__") for v in value))


def _variable_kind(type_expression: str) -> str:
    text = _EXPRESSION.fullmatch(type_expression)
    head = (text["expr"] if text else type_expression).split("(", 1)[0].strip()
    return {"string": "string", "number": "number", "bool": "bool", "list": "list",
            "set": "list", "tuple": "list", "map": "map", "object": "map"}.get(head, "unknown")


@dataclass(frozen=True)
class Scope:
    """Declared variable types and the raw locals, to type ``${var.x}`` / ``${local.x}``."""

    variables: dict[str, str]  # name -> kind
    locals: dict[str, Any]  # name -> raw value

    @classmethod
    def of(cls, template: dict[str, Any], variables: dict[str, Any]) -> Scope:
        kinds = {name.strip('"'): _variable_kind(body.get("type", "unknown"))
                 for block in variables.get("variable", [])
                 for name, body in block.items() if not name.startswith("__")}
        local_values = {name: value for block in template.get("locals", [])
                        for name, value in block.items() if not name.startswith("__")}
        return cls(kinds, local_values)


def value_kind(value: Any, scope: Scope) -> str:
    """The kind of a raw python-hcl2 value; ``unknown`` for an expression it cannot type."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if _is_block(value):
        return "block"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    if not isinstance(value, str):
        return "unknown"
    if _quoted(value):
        return "string"  # a literal or a template ("a-${x}"): always a string
    expression = _EXPRESSION.fullmatch(value)
    reference = expression and _REFERENCE.fullmatch(expression["expr"].strip())
    if not reference:
        return "unknown"
    if reference["scope"] == "var":
        kind = scope.variables.get(reference["name"], "unknown")
        return "unknown" if reference["index"] else kind
    if reference["name"] not in scope.locals:
        return "unknown"
    target = scope.locals[reference["name"]]
    if not reference["index"]:
        return value_kind(target, scope)
    elements = (target.values() if isinstance(target, dict)
                else target if isinstance(target, list) else [])
    kinds = {value_kind(v, scope) for v in elements}
    return kinds.pop() if len(kinds) == 1 else "unknown"


def compatible(kind: str, spec_kind: str) -> bool:
    return kind == spec_kind or (kind, spec_kind) in _SAFE_CONVERSIONS


def source_problems(template: dict[str, Any], variables: dict[str, Any],
                    spec: dict[str, Argument]) -> list[str]:
    """What is wrong with each ``source "vultr" "<name>"`` block of a raw template parse: an
    argument the plugin does not have, a value of another kind, a Required one missing."""
    scope = Scope.of(template, variables)
    problems: list[str] = []
    for block in template.get("source", []):
        for builder, named in block.items():
            if builder.strip('"') != "vultr":
                continue
            for name, body in named.items():
                where = f'source "vultr" {name}'
                given = {k: v for k, v in body.items() if not k.startswith("__")}
                for argument, value in given.items():
                    if argument not in spec:
                        near = get_close_matches(argument, spec, n=3)
                        problems.append(f"{where}: {argument!r} is not an argument of the "
                                        f"plugin" + (f" (did you mean {', '.join(near)}?)"
                                                     if near else ""))
                        continue
                    kind, wanted = value_kind(value, scope), spec[argument].kind
                    if kind == "unknown":
                        problems.append(f"{where}: cannot tell the kind of {argument} = "
                                        f"{value!r} (the plugin wants a {wanted})")
                    elif not compatible(kind, wanted):
                        problems.append(f"{where}: {argument} is given a {kind}, the plugin "
                                        f"wants a {wanted}")
                problems += [f"{where}: the plugin requires {a.name}, which is not set"
                             for a in spec.values() if a.required and a.name not in given]
    return problems
