"""``launcher images`` and ``image: latest`` against the emulator: only complete snapshots
described with the prefix count, newest first, and the marker is ``launcher run``'s choice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import client_for
from support.keys import FAKE_VULTR_KEY
from support.narrow import NARROW, cut_or_split

from launcher.cli import main
from launcher.commands import runcommon
from launcher.config import ImageConfig
from launcher.emulator import ManualClock, Timing
from launcher.emulator import catalogue as cat
from launcher.emulator.state import InstanceSpec
from launcher.errors import ConfigError
from launcher.providers.vultr import VultrProvider
from launcher.provision.images import ImageName, last_bake, list_images
from launcher.provision.plan import choose_snapshot

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SEEDED = cat.SNAPSHOTS[0]  # launcher-gpu-ubuntu2204-550-12.4-20261101, complete


@pytest.fixture
def cli(monkeypatch, tmp_path, emulator):
    """The CLI pointed at the emulator with a fast client, from an empty directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "240")
    monkeypatch.setenv("VULTR_API_URL", emulator.url)
    monkeypatch.setenv("VULTR_KEY", FAKE_VULTR_KEY)
    monkeypatch.setenv("LAUNCHER_CONFIG_DIR", str(CONFIGS))
    monkeypatch.setattr(runcommon, "vultr_client",
                        lambda account: client_for(account.vultr_api_url,
                                                   account.vultr_key.reveal() or None))
    return emulator


@pytest.fixture
def seeded(emulator) -> dict[str, str]:
    """Beside the catalogue's snapshot: a newer complete bake, a newest one still pending, a
    newer snapshot without the prefix, an older bake and one whose description is free text."""
    seed = emulator.state.seed_snapshot
    made = {
        "newer": seed("launcher-gpu-ubuntu2404-570-12.8-20261120", "2026-11-20T08:00:00+00:00"),
        "pending": seed("launcher-gpu-ubuntu2404-570-12.8-20261128", "2026-11-28T08:00:00+00:00",
                        complete=False),
        "foreign": seed("my-web-server-backup", "2026-11-25T08:00:00+00:00"),
        "older": seed("launcher-gpu-ubuntu2204-535-12.2-20260901", "2026-09-01T08:00:00+00:00"),
        "free": seed("launcher-gpu-hand made", "2026-10-01T08:00:00+00:00"),
    }
    return {name: snap.id for name, snap in made.items()} | {"seeded": SEEDED["id"]}


def images_json(capsys, *args: str) -> tuple[int, dict]:
    code = main(["images", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def test_newest_complete_prefixed_snapshot_is_latest(cli, seeded, capsys):
    code, data = images_json(capsys)
    assert code == 0
    ids = [i["id"] for i in data["images"]]
    assert ids == [seeded[k] for k in ("pending", "newer", "seeded", "free", "older")]
    assert data["latest"]["id"] == data["selected"]["id"] == seeded["newer"]
    marked = {i["id"]: (i["latest"], i["selected"]) for i in data["images"]}
    assert marked.pop(seeded["newer"]) == (True, True)
    assert set(marked.values()) == {(False, False)}
    newer = data["images"][1]
    assert (newer["os"], newer["driver"], newer["cuda"], newer["baked_on"], newer["status"]) == \
        ("ubuntu2404", "570", "12.8", "20261120", "complete")
    assert data["images"][0]["status"] == "pending"
    assert data["images"][3]["os"] is None  # "launcher-gpu-hand made": not the bake's format


def test_the_marker_is_the_launch_choice(cli, seeded):
    with client_for(cli.url) as client:
        listing = list_images(VultrProvider(client), ImageConfig())
        chosen = choose_snapshot(VultrProvider(client), ImageConfig())
    assert [i.snapshot.id for i in listing.images if i.latest] == [chosen.id]


def test_all_adds_snapshots_without_the_prefix(cli, seeded, capsys):
    _, data = images_json(capsys, "--all")
    foreign = [i for i in data["images"] if i["id"] == seeded["foreign"]]
    assert foreign and not foreign[0]["baked"] and not foreign[0]["latest"]
    assert data["latest"]["id"] == seeded["newer"]


def test_a_pinned_stage_shows_what_it_boots(cli, seeded, capsys, tmp_path):
    configs = _configs_with_image(tmp_path, {"snapshot": seeded["older"]})
    code, data = images_json(capsys, "--config-dir", str(configs))
    assert code == 0
    assert data["selected"]["id"] == seeded["older"] and data["latest"]["id"] == seeded["newer"]
    code, data = images_json(capsys, "--config-dir",
                             str(_configs_with_image(tmp_path, {"snapshot": seeded["pending"]})))
    assert code == 1
    assert "is pending, not complete" in data["selected"]["error"]


def test_nothing_to_boot_exits_1_with_the_reason(cli, seeded, capsys):
    cli.state.snapshots = {k: v for k, v in cli.state.snapshots.items()
                           if k in (seeded["pending"], seeded["foreign"])}
    code, data = images_json(capsys)
    assert code == 1 and data["latest"]["id"] is None
    assert "1 not complete yet" in data["latest"]["error"]
    assert main(["images"]) == 1
    assert "image: latest → nothing" in capsys.readouterr().out


def test_the_table(cli, seeded, capsys):
    assert main(["images"]) == 0
    out = capsys.readouterr().out
    assert "launcher-gpu-ubuntu2404-570-12.8-20261120" in out
    assert f"image: latest → {seeded['newer']}" in out
    assert "pending: not used until complete" in out
    assert "my-web-server-backup" not in out


def test_a_baked_snapshot_counts_once_complete(make_emulator, monkeypatch):
    clock = ManualClock()
    emu = make_emulator(timing=Timing(snapshot_complete_s=1200.0), clock=clock)
    emu.state.delete_snapshot(SEEDED["id"])
    old = emu.state.seed_snapshot("launcher-gpu-ubuntu2204-550-12.4-20200101",
                                  "2020-01-01T00:00:00+00:00")
    inst = emu.state.create_instance(InstanceSpec(region="sjc", plan="vc2-1c-1gb", os_id=1743))
    with client_for(emu.url) as client:
        baked = emu.state.create_snapshot(inst.id, "launcher-gpu-ubuntu2204-550-12.4-20261129")
        assert client.get_snapshot(baked.id).status == "pending"
        assert choose_snapshot(VultrProvider(client), ImageConfig()).id == old.id
        clock.advance(1200.0)
        assert choose_snapshot(VultrProvider(client), ImageConfig()).id == baked.id
        assert list_images(VultrProvider(client), ImageConfig()).images[0].latest


def test_no_key_is_a_clear_error(cli, monkeypatch, capsys):
    monkeypatch.delenv("VULTR_KEY")
    assert main(["images"]) == 2
    assert "VULTR_KEY is not set" in capsys.readouterr().err


@pytest.mark.parametrize(("description", "fields"), [
    ("launcher-gpu-ubuntu2204-550-12.4-20261101", ("ubuntu2204", "550", "12.4", "20261101")),
    ("launcher-gpu-debian12-570-12.8-20270102", ("debian12", "570", "12.8", "20270102")),
    ("launcher-gpu-ubuntu2204-550-12.4", None),
    ("launcher-gpu-ubuntu2204-550-12.4-20261101-extra", None),
    ("other-ubuntu2204-550-12.4-20261101", None),
])
def test_description_fields(description, fields):
    name = ImageName.parse(description, "launcher-gpu-")
    assert (None if name is None else (name.os, name.driver, name.cuda, name.date)) == fields


# -- packer's manifest ----------------------------------------------------------------------

MANIFEST = {
    "builds": [
        {"name": "gpu", "builder_type": "vultr", "build_time": 1764000000, "files": None,
         "artifact_id": "old-snapshot", "packer_run_uuid": "run-1",
         "custom_data": {"snapshot_description": "launcher-gpu-ubuntu2204-550-12.4-20261101"}},
        {"name": "gpu", "builder_type": "vultr", "build_time": 1764400000, "files": None,
         "artifact_id": "new-snapshot", "packer_run_uuid": "run-2",
         "custom_data": {"snapshot_description": "launcher-gpu-ubuntu2204-550-12.4-20261129"}},
    ],
    "last_run_uuid": "run-2",
}


def test_the_last_bake_from_the_manifest(tmp_path, capsys, emulator):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(MANIFEST))
    record = last_bake(path)
    assert (record.snapshot_id, record.description) == \
        ("new-snapshot", "launcher-gpu-ubuntu2204-550-12.4-20261129")
    assert main(["images", "--manifest", str(path)]) == 0
    out = capsys.readouterr().out
    assert "snapshot new-snapshot" in out and "20261129" in out
    assert emulator.events == []  # no API call


@pytest.mark.parametrize(("content", "says"), [
    (None, "no such manifest"),
    ("not json", "not a readable JSON manifest"),
    (json.dumps({"builds": []}), "field builds"),
    (json.dumps({"builds": [{"artifact_id": ""}]}), "field builds[].artifact_id"),
])
def test_a_bad_manifest_names_the_problem(tmp_path, content, says):
    path = tmp_path / "manifest.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=says.replace("[", r"\[").replace("]", r"\]")):
        last_bake(path)


def _configs_with_image(tmp_path: Path, image: dict) -> Path:
    """A copy of configs/ whose launcher.yaml has ``image`` merged in."""
    target = tmp_path / f"configs-{len(list(tmp_path.glob('configs-*')))}"
    shutil.copytree(CONFIGS, target)
    path = target / "launcher.yaml"
    data = yaml.safe_load(path.read_text())
    data["image"].update(image)
    path.write_text(yaml.safe_dump(data))
    return target


@pytest.mark.parametrize("columns", NARROW)
def test_a_narrow_terminal_shows_every_snapshot_id_and_description_whole(cli, seeded, capsys,
                                                                         monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", columns)
    _, data = images_json(capsys, "--all")

    assert main(["images", "--all"]) == 0

    out = capsys.readouterr().out.replace("launcher-gpu-…", "")  # the prefix, said so
    words = [w for i in data["images"] for w in (i["id"], *i["description"].split())]
    assert cut_or_split(out, words) == []
