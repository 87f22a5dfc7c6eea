"""The template's ``source "vultr"`` block against the plugin's own argument spec.

``packer validate`` needs the plugin binary, which cannot be fetched offline; the spec it
would decode the block with is kept as test data instead (``tests/data/packer/``, with where it
came from), tied to the version the template pins. See :mod:`.plugin_spec`.
"""

from __future__ import annotations

import hashlib
import re

import hcl2
import pytest

from .hcl import TEMPLATE, VARIABLES
from .plugin_spec import (
    PROVENANCE,
    SPEC_FILE,
    Argument,
    parse_spec,
    source_problems,
    spec_arguments,
)

# Checked by the plugin's Config.Prepare (builder/vultr/config.go at the pinned tag), not by
# hcldec, whose entries mark none of them Required: an empty region_id or plan_id is refused,
# and at most one image source may be set. api_key may be unset: VULTR_API_KEY is read then.
PREPARE_REQUIRED = {"region_id", "plan_id"}
IMAGE_SOURCES = {"app_id", "iso_id", "iso_url", "os_id", "snapshot_id"}


def _raw(path) -> dict:
    with path.open(encoding="utf-8") as handle:
        return hcl2.load(handle)


@pytest.fixture(scope="module")
def spec() -> dict[str, Argument]:
    return spec_arguments()


@pytest.fixture(scope="module")
def source() -> dict:
    (block,) = _raw(TEMPLATE)["source"]
    return {k: v for k, v in block['"vultr"']['"gpu"'].items() if not k.startswith("__")}


def test_the_spec_is_the_pinned_release_byte_for_byte():
    provenance = PROVENANCE.read_text(encoding="utf-8")
    (packer,) = _raw(TEMPLATE)["packer"]
    (plugins,) = packer["required_plugins"]
    pinned = plugins["vultr"]["version"].strip('"').lstrip("= ")
    tag = re.search(r"^- tag: `v([0-9.]+)`", provenance, re.MULTILINE)
    assert tag and tag[1] == pinned, (
        f"the template pins {pinned} but {SPEC_FILE.name} is from {tag and tag[1]}: "
        f"refresh it as {PROVENANCE.name} says")
    digest = re.search(r"^- sha256: `([0-9a-f]{64})`", provenance, re.MULTILINE)
    assert digest and digest[1] == hashlib.sha256(SPEC_FILE.read_bytes()).hexdigest()


def test_the_spec_is_read_whole(spec):
    # The generated map holds the builder's own arguments and the SSH communicator's.
    assert len(spec) == SPEC_FILE.read_text().count("&hcldec.") > 50
    assert spec["region_id"] == Argument("region_id", "string", False)
    assert spec["os_id"].kind == "number" and spec["ssh_port"].kind == "number"
    assert spec["tags"].kind == "list" and spec["packer_user_variables"].kind == "map"
    assert spec["enable_ipv6"].kind == "bool"


def test_every_argument_is_the_plugins_with_a_value_of_its_type(spec):
    problems = source_problems(_raw(TEMPLATE), _raw(VARIABLES), spec)
    assert not problems, "\n".join(problems)


def test_what_the_plugin_requires_is_set(spec, source):
    required = {a.name for a in spec.values() if a.required} | PREPARE_REQUIRED
    assert required <= set(source)
    assert len(IMAGE_SOURCES & set(source)) == 1
    assert set(spec) >= IMAGE_SOURCES | PREPARE_REQUIRED


def test_a_wrong_argument_is_named(spec):
    text = TEMPLATE.read_text(encoding="utf-8")
    broken = (text.replace("  region_id ", "  regoin_id ", 1)
              .replace("os_id                = local.os_ids[var.base_os]",
                       'os_id                = "1743"', 1)
              .replace('hostname             = "launcher-bake"',
                       'hostname             = "launcher-bake"\n  tags = "gpu"', 1))
    assert broken.count("regoin_id") == 1 and '"1743"' in broken and "tags =" in broken
    problems = source_problems(hcl2.loads(broken), _raw(VARIABLES), spec)
    assert problems == [
        "source \"vultr\" \"gpu\": 'regoin_id' is not an argument of the plugin "
        "(did you mean region_id?)",
        'source "vultr" "gpu": os_id is given a string, the plugin wants a number',
        'source "vultr" "gpu": tags is given a string, the plugin wants a list',
    ]


def test_a_required_argument_left_out_is_named():
    spec = parse_spec(SPEC_FILE.read_text().replace(
        'Name: "plan_id", Type: cty.String, Required: false',
        'Name: "plan_id", Type: cty.String, Required: true'))
    text = TEMPLATE.read_text(encoding="utf-8")
    without = re.sub(r"^\s*plan_id\s*=.*\n", "", text, count=1, flags=re.MULTILINE)
    assert source_problems(hcl2.loads(without), _raw(VARIABLES), spec) == [
        'source "vultr" "gpu": the plugin requires plan_id, which is not set']
