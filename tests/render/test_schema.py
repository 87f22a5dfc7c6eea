"""cloud-init/schema.json: a valid draft 2020-12 schema, every property described, strict
everywhere, and it refuses the mistakes cloud-init 22.4.2 lets through."""

from __future__ import annotations

import copy
import json

import pytest

from launcher.render.schema import SCHEMA_PATH, SchemaViolation, validate_document
from launcher.render.serialise import load_cloud_config

from .conftest import fake_secrets, make_spec, tiny_runner


def walk_objects(schema, where="#"):
    """Every subschema that declares properties, with where it is (conditions under ``if``
    only test values, so they are not fields)."""
    if isinstance(schema, dict):
        if "properties" in schema:
            yield where, schema
        for key, value in schema.items():
            if key != "if":
                yield from walk_objects(value, f"{where}/{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            yield from walk_objects(value, f"{where}/{index}")


def test_every_property_is_described_and_every_object_is_closed():
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    undescribed = [f"{where}/{name}" for where, obj in walk_objects(schema)
                   for name, sub in obj["properties"].items() if "description" not in sub]
    open_objects = [where for where, obj in walk_objects(schema)
                    if obj.get("additionalProperties") is not False]
    assert undescribed == [] and open_objects == []


@pytest.fixture(scope="module")
def good() -> dict:
    from launcher.render import BootInputs, render

    return load_cloud_config(render(make_spec(), fake_secrets(),
                                    BootInputs(tiny_runner(), delete_volume=True)).text)


@pytest.mark.parametrize(("mistake", "change"), [
    ("unknown top-level key", lambda d: d.update(mounts=[["/dev/vdb", "/mnt"]])),
    ("disk_setup", lambda d: d.update(disk_setup={})),
    ("package_upgrade on", lambda d: d.update(package_upgrade=True)),
    ("package_update missing", lambda d: d.pop("package_update")),
    ("bare octal mode", lambda d: d["write_files"][0].update(permissions=0o600)),
    ("mode without leading zero", lambda d: d["write_files"][0].update(permissions="600")),
    ("relative path", lambda d: d["write_files"][0].update(path="etc/x")),
    ("unknown encoding", lambda d: d["write_files"][0].update(encoding="base64")),
    ("unknown file key", lambda d: d["write_files"][0].update(append=True)),
    ("shell string in runcmd", lambda d: d["runcmd"].append("systemctl start x; rm -rf /")),
    ("empty argv", lambda d: d["runcmd"].append([])),
    ("newline in argv", lambda d: d["runcmd"].append(["echo", "a\nb"])),
    ("owner without group", lambda d: d["write_files"][0].update(owner="root")),
])
def test_the_schema_refuses(good, mistake, change):
    document = copy.deepcopy(good)
    change(document)
    with pytest.raises(SchemaViolation) as raised:
        validate_document(document)
    assert raised.value.problems


def test_violations_never_quote_file_content(good):
    document = copy.deepcopy(good)
    document["write_files"][2]["permissions"] = 384
    document["surprise"] = True
    with pytest.raises(SchemaViolation) as raised:
        validate_document(document)
    text = str(raised.value)
    assert "surprise" in text and "write_files.2.permissions" in text
    assert not any(v in text for v in fake_secrets().all_values())
