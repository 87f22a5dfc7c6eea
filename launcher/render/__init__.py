"""The run document: a validated ``#cloud-config`` carrying the runner, the spec and secrets.

``render(spec, secrets, build_runner_zipapp())`` is the whole pipeline; see
:mod:`launcher.render.pipeline` for its stages and ``docs/security.md`` for why the secrets
live where they do.
"""

from launcher.render.pipeline import (
    MAX_DOCUMENT_BYTES,
    DocumentError,
    RenderedDocument,
    SizeReport,
    build_document,
    render,
)
from launcher.render.zipapp import build_runner_zipapp, zipapp_listing

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "DocumentError",
    "RenderedDocument",
    "SizeReport",
    "build_document",
    "build_runner_zipapp",
    "render",
    "zipapp_listing",
]
