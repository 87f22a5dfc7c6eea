"""Issue 14, point 12: a value a pattern refuses is explained in words with an example, never
with the regular expression (``--reuse-volume``, ``B2_S3_ENDPOINT``, every other pattern)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from launcher.config import Account, apply_account, load_stage
from launcher.config.overrides import Overrides, apply_overrides
from launcher.config.schema import SCHEMA_DIR, check_value, explain
from launcher.errors import ConfigError

from .conftest import CONFIGS

REGEX_BITS = ("^", "$", "[a-z", "{0,", "\\")


def pattern_nodes() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node that holds a ``pattern``, with where it is."""
    def walk(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
        if isinstance(node, dict):
            if "pattern" in node and not where.endswith("/not"):
                yield where, node
            for key, value in node.items():
                yield from walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, f"{where}/{index}")
    for path in sorted(SCHEMA_DIR.glob("*.schema.json")):
        yield from walk(json.loads(path.read_text(encoding="utf-8")), path.name)


NODES = dict(pattern_nodes())


def words_only(message: str) -> bool:
    return not any(bit in message for bit in REGEX_BITS)


def test_reuse_volume_is_explained_in_words():
    stage = load_stage(CONFIGS, "smoke")
    with pytest.raises(ConfigError) as raised:
        apply_overrides(stage, Overrides(reuse_volume="Bad Name"))
    assert str(raised.value) == (
        "--reuse-volume: expected launcher-cache- then a name of 1 to 48 lowercase letters, "
        "digits or dashes starting with a letter or digit; or empty, e.g. launcher-cache-ups; "
        "got 'launcher-cache-Bad Name'")


def test_b2_s3_endpoint_is_explained_in_words():
    stage = load_stage(CONFIGS, "smoke")
    account = Account(b2_s3_endpoint="http://s3.example.com", sources=(("B2_S3_ENDPOINT", "env"),))
    with pytest.raises(ConfigError) as raised:
        apply_account(stage, account)
    assert str(raised.value) == (
        "B2_S3_ENDPOINT (from the environment): expected an https URL, or plain http to a "
        "loopback host only (127.x.x.x, localhost, [::1]), e.g. "
        "https://s3.us-west-004.backblazeb2.com; got 'http://s3.example.com'")


def test_a_path_with_dot_dot_is_explained_in_words_too():
    with pytest.raises(ConfigError) as raised:
        check_value("data/../../etc", "launcher.schema.json#/$defs/relative_path", "links")
    message = str(raised.value)
    assert "without .. or a leading /" in message and words_only(message), message


@pytest.mark.parametrize("where", sorted(NODES))
def test_every_pattern_has_words_and_an_example_that_fits(where):
    node = NODES[where]
    assert node.get("x-expected"), f"{where}: no x-expected words beside its pattern"
    [example, *_] = node["examples"]
    assert not list(Draft202012Validator(node).iter_errors(example)), (where, example)
    bad = "Not / valid ! " * 2
    [error] = list(Draft202012Validator(node).iter_errors(bad))
    _, message = explain(error)
    assert message.startswith(f"expected {node['x-expected']}, e.g. {example}")
    assert node["pattern"] not in message
