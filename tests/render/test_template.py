"""cloud-init/run.yaml: data with whole-value placeholders, never a text template."""

from __future__ import annotations

import pytest

from launcher.render.template import TEMPLATE_PATH, TemplateError, load_template, substitute


def test_the_template_loads_and_fills_its_own_paths():
    template = load_template(values={"secrets_file": "/etc/launcher/secrets.env"})
    assert template.files["secrets"].path == "/etc/launcher/secrets.env"
    assert template.fetched["runner"].owner == "root:root"
    service = template.units["launcher-runner.service"]["Service"]
    assert service["ExecStart"] == ["/usr/bin/python3", "/opt/launcher/runner.pyz",
                                    "supervise", "--spec", "/etc/launcher/run.json"]
    assert service["ExecStartPre"] == ["/usr/bin/python3", "/opt/launcher/boot.pyz",
                                       "fetch", "--boot", "/etc/launcher/boot.json"]
    assert service["Restart"] == "no" and service["KillMode"] == "mixed"
    assert service["TimeoutStartSec"] == "2400" and "RuntimeMaxSec" not in service
    timer = template.units["launcher-watchdog.timer"]["Timer"]
    assert (timer["OnBootSec"], timer["OnUnitInactiveSec"], timer["AccuracySec"]) == (
        "5min", "1min", "10s")


def test_the_template_uses_no_early_disk_modules():
    cloud_config = load_template(values={"secrets_file": "/s"}).cloud_config
    assert not {"disk_setup", "fs_setup", "mounts"} & set(cloud_config)


def test_a_missing_value_is_refused():
    with pytest.raises(TemplateError, match="secrets_file"):
        load_template(TEMPLATE_PATH, values={})


@pytest.mark.parametrize(("value", "problem"), [
    ("prefix-${runner}", "whole value"),
    ("${unknown}", "unknown placeholder"),
    ("${runner", "whole value"),
])
def test_placeholders_are_whole_values_with_known_names(value, problem):
    with pytest.raises(TemplateError, match=problem):
        substitute({"a": [value]}, {"runner": "/r"}, "t")


def test_substitution_replaces_data_not_text():
    hostile = "x\n- evil: [1]\n"
    assert substitute({"a": ["${runner}"]}, {"runner": hostile}, "t") == {"a": [hostile]}


def test_a_bad_template_names_the_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        "cloud_config: {}\nunits: {}\n"
        "unit_files: {directory: /u, owner: 'root:root', permissions: '0644'}\n"
        "fetched: {runner: {path: /r, permissions: '0755'}, spec: {path: /s, permissions: "
        "'0644'}}\n"
        "files:\n  boot: {path: /b, owner: 'root:root', permissions: 0755}\n"
        "  boot_spec: {path: /j, owner: 'root:root', permissions: '0644'}\n"
        "  secrets: {path: /x, owner: 'root:root', permissions: '0600'}\n")
    with pytest.raises(TemplateError) as raised:
        load_template(path, values={})
    assert str(path) in str(raised.value) and "files.boot" in str(raised.value)
    assert "quote octal modes" in str(raised.value)
