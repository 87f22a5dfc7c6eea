"""One rule for a missing prerequisite: skip with the reason, fail under ``CI=true``."""

from __future__ import annotations

import os

import pytest


def need(ok: bool, reason: str) -> None:
    """Skip with ``reason`` when not ``ok``; under CI=true a missing prerequisite fails."""
    if ok:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: required)")
    pytest.skip(reason)
