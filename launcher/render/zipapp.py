"""The runner as zip applications: ``runner.pyz`` (the whole runner, fetched from the bucket)
and ``boot.pyz`` (the bootstrap that fetches it, inside the document).

Contents, byte-for-byte reproducible (fixed timestamps and modes, sorted entries, stored
uncompressed so the document's gzip sees across files):

- ``__main__.py``          runs ``launcher.runner.cli.main()`` (``boot.pyz``:
                           ``launcher.runner.boot.main()``);
- ``launcher/__init__.py`` a minimal stand-in, so importing ``launcher.runner`` pulls in
                           nothing else of the launcher;
- ``launcher/runner/**/*.py``  every runner module (``boot.pyz``: :data:`BOOT_MODULES` only,
                           slimmed: comments and docstrings blanked, a docstring becoming
                           ``""``, every line keeping its number so that a traceback from the
                           instance points at the right line of the checkout). Each slimmed
                           module is proved to have the same syntax tree as the original,
                           docstrings aside, or it travels as it is. A module that reads
                           ``__doc__`` keeps its docstrings. Slimming cuts the gzipped
                           bootstrap by about a third.

The instance runs them with the image's system interpreter: ``python3 boot.pyz fetch ...``, then
``python3 runner.pyz supervise ...``.
"""

from __future__ import annotations

import ast
import io
import tokenize
import zipfile
from pathlib import Path

from launcher import __version__

RUNNER_DIR = Path(__file__).resolve().parents[1] / "runner"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
FILE_MODE = 0o644

MAIN = '''"""runner.pyz entry point: the on-instance runner's command line."""

import sys

from launcher.runner.cli import main

sys.exit(main())
'''
BOOT_MAIN = MAIN.replace("runner.pyz", "boot.pyz").replace("runner.cli", "runner.boot")
# What the bootstrap imports, and nothing else of the runner (a test proves it runs alone).
BOOT_MODULES = ("__init__.py", "boot.py", "retry.py", "s5cmd.py", "secretsfile.py", "tools.py",
                "vultr.py")

PACKAGE_INIT = f'''"""launcher, as packed into runner.pyz: only launcher.runner travels with it."""

__version__ = "{__version__}"
'''


def runner_sources(runner_dir: Path = RUNNER_DIR, *, slim: bool = True,
                   only: tuple[str, ...] | None = None) -> dict[str, bytes]:
    """Archive name -> bytes of every ``.py`` file under ``runner_dir`` (no caches; ``only``:
    just these paths below it), slimmed by :func:`slim_source` unless ``slim`` is false."""
    sources = {}
    for path in sorted(runner_dir.rglob("*.py")):
        relative = path.relative_to(runner_dir)
        if "__pycache__" in relative.parts or (only is not None
                                                and relative.as_posix() not in only):
            continue
        data = path.read_bytes()
        if slim:
            data = slim_source(data.decode("utf-8")).encode("utf-8")
        sources[f"launcher/runner/{relative.as_posix()}"] = data
    if "launcher/runner/__init__.py" not in sources:
        raise FileNotFoundError(f"{runner_dir}: no __init__.py, so this is not the runner")
    return sources


def build_runner_zipapp(runner_dir: Path = RUNNER_DIR, *, slim: bool = False) -> bytes:
    """The runner zipapp's bytes; the same sources always give the same bytes. It travels
    through the bucket, so it keeps its docstrings unless ``slim``."""
    return _zipapp(MAIN, runner_sources(runner_dir, slim=slim))


def build_boot_zipapp(runner_dir: Path = RUNNER_DIR) -> bytes:
    """The bootstrap zipapp's bytes: :data:`BOOT_MODULES` only, slimmed."""
    return _zipapp(BOOT_MAIN, runner_sources(runner_dir, only=BOOT_MODULES))


def _zipapp(main: str, sources: dict[str, bytes]) -> bytes:
    entries = {"__main__.py": main.encode(), "launcher/__init__.py": PACKAGE_INIT.encode()}
    entries.update(sources)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.create_system = 3  # Unix, whatever builds it
            info.external_attr = (0o100000 | FILE_MODE) << 16
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, entries[name])
    return buffer.getvalue()


def zipapp_listing(data: bytes) -> list[str]:
    """The entry names of a zipapp, in archive order."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.namelist()


def slim_source(source: str) -> str:
    """``source`` without comments and docstrings, line for line; ``source`` itself when the
    result would not be the same program (or the module reads ``__doc__``)."""
    try:
        original = _code_shape(source)
        slimmed = _strip_comments(source if "__doc__" in source else _blank_docstrings(source))
        if len(slimmed.splitlines()) == len(source.splitlines()) and \
                _code_shape(slimmed) == original:
            return slimmed
    except (SyntaxError, tokenize.TokenError, ValueError):
        pass
    return source


def _has_docstring(node: ast.AST) -> bool:
    body = getattr(node, "body", None)
    return (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and bool(body) and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str))


def _docstrings(tree: ast.Module) -> list[ast.Expr]:
    return [node.body[0] for node in ast.walk(tree) if _has_docstring(node)]


def _code_shape(source: str) -> str:
    """The syntax tree with docstrings removed, as text: equal shapes, equal programs."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if _has_docstring(node):
            node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree)


def _blank_docstrings(source: str) -> str:
    lines = source.splitlines(keepends=True)
    for doc in _docstrings(ast.parse(source)):
        first, last = doc.lineno - 1, doc.end_lineno - 1
        head, tail = lines[first][:doc.col_offset], lines[last][doc.end_col_offset:]
        if head.strip() or tail.strip():
            continue  # shares a line with code: leave it
        lines[first] = f'{head}""\n'
        for index in range(first + 1, last + 1):
            lines[index] = "\n"
    return "".join(lines)


def _strip_comments(source: str) -> str:
    lines = source.splitlines(keepends=True)
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    comments = [t.start for t in tokens if t.type == tokenize.COMMENT]
    for row, col in reversed(comments):
        line = lines[row - 1]
        lines[row - 1] = line[:col].rstrip() + ("\n" if line.endswith("\n") else "")
    return "".join(lines)
