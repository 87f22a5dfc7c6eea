"""Every shipped stage's onstart fits Vast's 4,096 characters, with presigned URLs as long as
a real Backblaze B2 bucket makes them (s5cmd presigns locally: no request is sent)."""

from __future__ import annotations

import dataclasses

import pytest
from support.keys import FAKE_B2_APP_KEY, FAKE_B2_KEY_ID, FAKE_WANDB_KEY

from launcher.bucket import Bucket, BucketAddress
from launcher.config import load_stage, stage_names
from launcher.provision.onstart import render_onstart
from launcher.render.onstart import MAX_ONSTART_CHARS, s5cmd_pin
from launcher.render.pipeline import boot_uploads
from launcher.render.stage import placeholder_facts, stage_run_spec
from launcher.resources import starter_configs
from launcher.runner.spec import ContainerSpec, RunSecrets

B2 = "https://s3.us-west-004.backblazeb2.com"
BUCKET = "universal-simulator-training-runs"  # longer than most: the URLs carry it twice
NOW = 1_795_000_000.0
SECRETS = {"B2_KEY_ID": FAKE_B2_KEY_ID, "B2_APP_KEY": FAKE_B2_APP_KEY,
           "WANDB_API_KEY": FAKE_WANDB_KEY, "VULTR_KEY": ""}


@pytest.mark.parametrize("name", stage_names(starter_configs()))
def test_each_stage_s_onstart_fits_with_real_length_urls(name, tmp_path):
    stage = load_stage(starter_configs(), name)
    stage = dataclasses.replace(stage, provider="vast", storage=dataclasses.replace(
        stage.storage, endpoint_url=B2, bucket=BUCKET))
    facts = dataclasses.replace(placeholder_facts(stage, NOW), block_id="", mount_id="",
                                api_url="https://console.vast.ai/api/v0",
                                container=ContainerSpec(*s5cmd_pin()))
    spec = stage_run_spec(stage, facts, NOW)
    uploads = boot_uploads(spec, b"runner")
    bucket = Bucket(BucketAddress(B2, BUCKET, stage.storage.runs_prefix), RunSecrets(SECRETS))
    onstart = render_onstart(bucket, spec, uploads, dict(SECRETS), NOW)
    print(f"{name}: {onstart}")
    assert onstart.total_chars <= MAX_ONSTART_CHARS
    assert f"{B2}/{BUCKET}/" in onstart.text and FAKE_B2_APP_KEY not in onstart.text
