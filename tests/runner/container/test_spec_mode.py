"""The run spec's container mode: version 3, ``placement.provider``, and what a Vast spec may
not hold; a version-2 (Vultr) spec still loads."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from launcher.runner.spec import (
    CONTAINER_SECRET_NAMES,
    SECRET_NAMES,
    SPEC_VERSION,
    ContainerSpec,
    Placement,
    RunSpec,
    SpecError,
    VolumeSpec,
    read_secrets,
)
from launcher.runner.train import wandb_tags

from .conftest import container_secrets, vast_spec


def test_a_vast_spec_round_trips_and_is_in_container_mode(tmp_path):
    spec = vast_spec(tmp_path)
    again = RunSpec.from_json(spec.to_json())
    assert again == spec and again.in_container and SPEC_VERSION == 4
    assert again.container == spec.container
    assert again.secret_names == CONTAINER_SECRET_NAMES
    assert "environment=vast" in wandb_tags(again)


def test_a_version_2_vultr_spec_still_loads(tmp_path):
    data = json.loads(vast_spec(tmp_path).to_json())
    data.pop("container")
    data["version"] = 2
    data["placement"]["provider"] = "vultr"
    spec = RunSpec.from_json(json.dumps(data))
    assert not spec.in_container and spec.container == ContainerSpec()
    assert spec.secret_names == SECRET_NAMES
    assert "environment=vultr" in wandb_tags(spec)


def test_a_version_2_spec_cannot_ask_for_vast(tmp_path):
    data = json.loads(vast_spec(tmp_path).to_json())
    data.pop("container")
    data["version"] = 2
    with pytest.raises(SpecError, match="needs spec version 3"):
        RunSpec.from_json(json.dumps(data))


@pytest.mark.parametrize("version", [1, 5])
def test_unknown_versions_are_refused(tmp_path, version):
    with pytest.raises(SpecError, match=f"spec version {version} is not one this runner reads"):
        replace(vast_spec(tmp_path), version=version)


def test_a_vast_spec_has_no_block_volume(tmp_path):
    with pytest.raises(SpecError, match="volume.block_id must be empty"):
        vast_spec(tmp_path, volume=VolumeSpec(block_id="blk-1", mount_id="m"))


def test_an_unknown_provider_is_refused(tmp_path):
    with pytest.raises(SpecError, match="placement.provider must be one of vultr, vast"):
        vast_spec(tmp_path, placement=Placement(provider="aws"))


def test_container_secrets_file_round_trips_with_the_instance_key(tmp_path):
    path = tmp_path / "secrets.env"
    secrets = container_secrets()
    path.write_text(secrets.to_env_file(CONTAINER_SECRET_NAMES))
    assert read_secrets(path, CONTAINER_SECRET_NAMES).values == secrets.values
    with pytest.raises(SpecError, match="expected NAME=value"):
        read_secrets(path)  # Vultr's names only: the instance key is not one of them
