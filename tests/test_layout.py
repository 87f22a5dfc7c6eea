"""The rooms keep their doors: who may import what, and the README names every command."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from launcher.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "launcher"


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_only_the_api_layer_speaks_http():
    # Servers on 127.0.0.1 aside: the emulator, and the sandbox's metadata service.
    servers = {PACKAGE / "sandbox" / "metadata.py"}
    offenders = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py")
                 if {"requests", "urllib3", "http"} & imported_roots(p)
                 and PACKAGE / "vultr" not in p.parents and PACKAGE / "emulator" not in p.parents
                 and p not in servers]
    assert offenders == []


def test_the_emulator_uses_the_standard_library_only():
    allowed = set(sys.stdlib_module_names) | {"launcher"}
    foreign = {str(p.relative_to(ROOT)): sorted(imported_roots(p) - allowed)
               for p in (PACKAGE / "emulator").rglob("*.py")}
    assert {path: mods for path, mods in foreign.items() if mods} == {}


def test_the_emulator_imports_nothing_else_of_the_launcher():
    for path in (PACKAGE / "emulator").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("launcher"):
                assert node.module.startswith("launcher.emulator"), (path, node.module)


def test_the_readme_documents_every_command():
    readme = (ROOT / "README.md").read_text()
    commands = build_parser()._subparsers._group_actions[0].choices
    assert [c for c in commands if f"`launcher {c}" not in readme] == []
