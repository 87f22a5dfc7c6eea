"""The files the launcher reads at run time, from the installed package.

The configuration's schemas and starter configs (``configs/``), the run document's template
and schema (``cloud-init/``) and the offline demo's example stage (``examples/``) live at the
top of the repository, where people look for them. ``launcher/_data/`` links to those folders,
so the build ships them inside the package (the wheel and the sdist carry copies) and a
checkout reads the same files through the links: one lookup, installed or not, and nothing
is found by walking up from a source file.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

DATA = "_data"


def data_path(*parts: str) -> Path:
    """The packaged file or folder ``parts`` below ``_data`` (e.g. ``"configs", "schema"``).

    Installers unpack wheels, so the package is a folder on disk; a zipped install (which
    pip never makes) is refused by name rather than read wrongly."""
    root = files("launcher")
    if not isinstance(root, Path):
        raise RuntimeError(f"the launcher package is not a folder on disk ({root}): "
                           "install it with pip, pipx or uv")
    return root.joinpath(DATA, *parts)


def schema_dir() -> Path:
    """The configuration's JSON Schemas (``configs/schema/``)."""
    return data_path("configs", "schema")


def starter_configs() -> Path:
    """The starter ``launcher.yaml`` and ``stages/`` that ``launcher init`` copies."""
    return data_path("configs")


def template_path() -> Path:
    """The run document's template (``cloud-init/run.yaml``)."""
    return data_path("cloud-init", "run.yaml")


def document_schema_path() -> Path:
    """The JSON Schema the rendered run document must satisfy (``cloud-init/schema.json``)."""
    return data_path("cloud-init", "schema.json")


def example_dir() -> Path:
    """The offline demo's example stage code (``examples/tiny-train``)."""
    return data_path("examples", "tiny-train")
