"""The run document: a validated ``#cloud-config`` bootstrap carrying the secrets and pinning
the runner and the spec, which it fetches from the bucket.

``render(spec, secrets, BootInputs(build_runner_zipapp(), delete_volume=True))`` is the whole
pipeline; see
:mod:`launcher.render.pipeline` for its stages and ``docs/security.md`` for why the secrets
live where they do.
"""

from launcher.render.pipeline import (
    MAX_USER_DATA_BYTES,
    BootInputs,
    DocumentError,
    RenderedDocument,
    SizeReport,
    build_document,
    render,
)
from launcher.render.zipapp import build_runner_zipapp, zipapp_listing

__all__ = [
    "MAX_USER_DATA_BYTES",
    "BootInputs",
    "DocumentError",
    "RenderedDocument",
    "SizeReport",
    "build_document",
    "build_runner_zipapp",
    "render",
    "zipapp_listing",
]
