"""YAML that survives: quoting, long lines, multi-line text, booleans and octal-looking
strings all load back equal with the safe loader cloud-init uses."""

from __future__ import annotations

import random

import pytest

from launcher.render.serialise import HEADER, RoundTripError, load_cloud_config, to_cloud_config

TRICKY = ["0600", "0755", "0o644", "no", "yes", "on", "off", "true", "False", "null", "~",
          "1e3", "0x1F", "12:30:00", "2025-01-01", "", " ", "-", "- x", "? x", ": x", "#x",
          "a #b", "x: y", "[a]", "{a}", "'q'", '"q"', "|", ">", "*a", "&a", "!t", "%p", "@a",
          "`b`", "a\nb", "a\n", "\n", "a\n\n", "  indented\nlines  ", "trailing \nspace",
          "\ttab", "cr\r\nlf", "nul\x00", "bell\x07", "é", "日本語", "🚀", "\u2028", "\ufeffbom",
          "x" * 100_000, ("word " * 5000).strip()]


@pytest.mark.parametrize("value", TRICKY, ids=range(len(TRICKY)))
def test_tricky_strings_load_back_equal(value):
    document = {"package_update": False, "write_files": [{"path": "/x", "content": value}],
                "runcmd": [["echo", value]] if value and "\n" not in value else [["true"]]}
    text = to_cloud_config(document)
    assert text.startswith(HEADER) and text.isascii()
    assert load_cloud_config(text) == document


def test_random_strings_load_back_equal():
    rng = random.Random(1234)
    alphabet = "ab :#-'\"\\\n\t\r{}[],&*!|>%@`~0123456789é日🚀\x00\x1b"
    for _ in range(200):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        document = {"write_files": [{"content": value}], "flag": rng.choice([True, False])}
        assert load_cloud_config(to_cloud_config(document)) == document


def test_long_lines_are_never_folded():
    text = to_cloud_config({"content": "A" * 200_000})
    assert max(len(line) for line in text.splitlines()) > 200_000


def test_booleans_stay_booleans_and_modes_stay_strings():
    text = to_cloud_config({"package_upgrade": False, "permissions": "0600"})
    assert "package_upgrade: false" in text and "permissions: '0600'" in text


def test_argv_lists_are_written_in_flow_style():
    text = to_cloud_config({"runcmd": [["systemctl", "daemon-reload"]]})
    assert "- [systemctl, daemon-reload]" in text


def test_multi_line_text_is_a_literal_block():
    text = to_cloud_config({"content": "[Unit]\nDescription=x\n"})
    assert "content: |\n  [Unit]\n  Description=x\n" in text


def test_a_document_without_the_header_is_refused():
    with pytest.raises(RoundTripError):
        load_cloud_config("package_update: false\n")


def test_data_yaml_cannot_represent_is_refused():
    with pytest.raises(RoundTripError):
        to_cloud_config({"numbers": (1, 2)})  # a tuple loads back as a list
