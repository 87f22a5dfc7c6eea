"""The rooms keep their doors: who may import what, and the README names every command."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

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


def launcher_imports(path: Path) -> set[str]:
    """The ``launcher.*`` modules ``path`` imports (absolute imports: the package uses no
    relative ones)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {m for m in found if m == "launcher" or m.startswith("launcher.")}


def room_of(module: str) -> str:
    """``launcher.operate.runs`` -> ``operate``; a module at the package root -> ``basics``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) \
        else "basics"


def crossings() -> dict[str, set[str]]:
    """room -> the other rooms its modules import."""
    seen: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if "_data" in path.parts:
            continue
        rel = path.relative_to(PACKAGE)
        room = rel.parts[0] if len(rel.parts) > 1 else "basics"
        seen.setdefault(room, set()).update(room_of(m) for m in launcher_imports(path))
    return {room: targets - {room} for room, targets in seen.items()}


# The offline rehearsal (user features that ship) and who may reach it.
OFFLINE = {"emulator", "demo", "sandbox"}


def test_the_package_imports_no_test_equipment():
    equipment = {"vmhost", "support", "tests", "pytest", "hypothesis"}
    offenders = {str(p.relative_to(ROOT)): sorted(imported_roots(p) & equipment)
                 for p in PACKAGE.rglob("*.py") if imported_roots(p) & equipment}
    assert offenders == {}


def test_only_the_command_line_reaches_the_offline_rehearsal():
    reach = {room: targets & OFFLINE for room, targets in crossings().items()
             if targets & OFFLINE and room not in OFFLINE | {"commands"}}
    assert reach == {}


def test_nothing_but_the_entry_point_imports_the_commands():
    importers = {str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py")
                 if any(room_of(m) == "commands" for m in launcher_imports(p))
                 and PACKAGE / "commands" not in p.parents}
    assert importers == {"launcher/cli.py"}


def test_the_api_layer_and_the_runner_stay_below_every_other_room():
    # vultr/ may use the runner's standard-library pieces (one retry rule for both clients);
    # the runner travels alone to the instance and imports nothing of the launcher's.
    assert crossings().get("vultr", set()) <= {"basics", "runner"}
    assert crossings().get("runner", set()) == set()


# Where launching and operating still reach Vultr's own layer, and why: Vultr-only account
# checks (the proof of the instance's key, doctor, the self-destruct rehearsal) and the dry
# run's listing of Vultr's wire calls.
VULTR_DIRECT = {"launcher/provision/dryrun.py",
                "launcher/provision/preflight.py", "launcher/operate/doctor.py",
                "launcher/operate/selfdestruct.py"}


def cloud_direct(rooms: tuple[str, ...] = ("provision", "operate")) -> set[str]:
    """The modules of ``rooms`` that import a cloud's API layer instead of a provider."""
    return {str(p.relative_to(ROOT)) for room in rooms for p in (PACKAGE / room).rglob("*.py")
            if any(room_of(m) in ("vultr", "vast") for m in launcher_imports(p))}


def test_launching_and_operating_reach_a_cloud_through_the_providers():
    assert cloud_direct() == VULTR_DIRECT


def test_the_door_checks_can_fail(tmp_path, monkeypatch):
    fake = tmp_path / "launcher"
    (fake / "operate").mkdir(parents=True)
    (fake / "operate" / "x.py").write_text("from launcher.emulator import Emulator\n"
                                           "from vmhost import qemu\n")
    (fake / "vultr").mkdir()
    (fake / "emulator").mkdir()
    (fake / "vultr" / "y.py").write_text("from launcher.operate.runs import RunView\n")
    (fake / "operate" / "z.py").write_text("from launcher.vultr import VultrClient\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert crossings() == {"operate": {"emulator", "vultr"}, "vultr": {"operate"}}
    assert cloud_direct(("operate",)) == {"launcher/operate/z.py"}
    with pytest.raises(AssertionError):
        test_the_package_imports_no_test_equipment()
    with pytest.raises(AssertionError):
        test_only_the_command_line_reaches_the_offline_rehearsal()
    with pytest.raises(AssertionError):
        test_the_api_layer_and_the_runner_stay_below_every_other_room()
