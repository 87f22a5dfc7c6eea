"""The bake template is wired as docs/bake.md says, without packer or a Vultr account.

A parse of ``packer/*.pkr.hcl`` (python-hcl2) checks the builder, its arguments, the variables
and their rules, the provisioners and the manifest post-processor; the tools (packer fmt and
validate, shellcheck) run where they are installed and skip, saying why, where they are not.
``make validate-image`` runs this module.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import timedelta

import pytest
import yaml
from support.need import need

from launcher.config import ImageConfig
from launcher.emulator import catalogue
from launcher.provision.images import ImageName

from .hcl import PACKER, ROOT, TEMPLATE, VARIABLES, blocks, load, render
from .plugin_spec import spec_arguments

# The vultr plugin's arguments at the pinned release, the SSH communicator's included (its own
# spec, kept in tests/data/packer/; test_plugin_spec.py checks kinds and requirements too).
PLUGIN_ARGUMENTS = set(spec_arguments())
VARIABLE_NAMES = {"region", "build_plan", "vgpu", "base_os", "nvidia_driver_branch",
                  "cuda_version", "python_requirements", "s5cmd_version", "snapshot_prefix",
                  "state_timeout"}
SCRIPT_ENVIRONMENT = {"INSTALL_NVIDIA", "NVIDIA_DRIVER_BRANCH", "CUDA_VERSION",
                      "PYTHON_REQUIREMENTS", "S5CMD_VERSION"}
SCRIPTS = sorted(p.name for p in (PACKER / "scripts").glob("[0-9]*.sh"))  # the steps
LIBRARY = "lib.sh"  # their shared helpers, sourced from beside each step


@pytest.fixture(scope="module")
def template() -> dict:
    return load(TEMPLATE)


@pytest.fixture(scope="module")
def variables() -> dict:
    return blocks(load(VARIABLES), "variable")


@pytest.fixture(scope="module")
def source(template) -> dict:
    (builder,) = template["source"]
    assert list(builder) == ["vultr"], "the builder is the vultr plugin's"
    return builder["vultr"]["gpu"]


@pytest.fixture(scope="module")
def build(template) -> dict:
    (only,) = template["build"]
    return only


def defaults(variables: dict, **locals_: str) -> dict[str, str]:
    values = {f"var.{name}": str(v.get("default", "")) for name, v in variables.items()}
    return values | {f"local.{k}": v for k, v in locals_.items()}


def test_the_vultr_plugin_is_required_at_a_pinned_version_packer_can_install(template):
    (packer,) = template["packer"]
    (plugins,) = packer["required_plugins"]
    assert plugins["vultr"]["source"] == "github.com/vultr/vultr"
    pinned = re.fullmatch(r"= ?(\d+)\.(\d+)\.(\d+)", plugins["vultr"]["version"])
    assert pinned, plugins["vultr"]["version"]
    # Releases before 2.7.0 from 2.6.0 on cannot be installed by `packer init` (#388, #389).
    assert tuple(map(int, pinned.groups())) >= (2, 7, 0)


def test_the_builder_uses_the_plugins_arguments_and_no_key(source):
    assert set(source) <= PLUGIN_ARGUMENTS
    assert "api_key" not in source  # read by the plugin from VULTR_API_KEY
    assert source["region_id"] == "${var.region}"
    assert source["plan_id"] == "${var.build_plan}"
    assert source["os_id"] == "${local.os_ids[var.base_os]}"
    assert source["snapshot_description"] == "${local.snapshot_description}"
    assert source["state_timeout"] == "${var.state_timeout}"
    assert source["ssh_username"] == "root"


def test_each_base_os_maps_to_its_vultr_os_id(template, variables):
    (local_block,) = template["locals"]
    assert local_block["os_ids"] == {"ubuntu2204": 1743, "ubuntu2404": 2284}
    names = {o["id"]: o["name"] for o in catalogue.OPERATING_SYSTEMS}
    assert names[1743].startswith("Ubuntu 22.04") and names[2284].startswith("Ubuntu 24.04")
    assert '["ubuntu2204", "ubuntu2404"]' in variables["base_os"]["validation"][0]["condition"]


def test_the_description_is_what_image_latest_looks_for(template, variables):
    (local_block,) = template["locals"]
    rendered = render(local_block["snapshot_description"],
                      defaults(variables, bake_date="20261101"))
    assert rendered == catalogue.SNAPSHOTS[0]["description"]  # what the emulator seeds
    prefix = variables["snapshot_prefix"]["default"]
    assert ImageName.parse(rendered, prefix) == ImageName("ubuntu2204", "550", "12.4", "20261101")
    assert local_block["bake_date"] == '${formatdate("YYYYMMDD", timestamp())}'


def test_the_prefix_matches_the_launcher_configuration(variables):
    defaults_file = yaml.safe_load((ROOT / "configs" / "launcher.yaml").read_text())
    prefix = variables["snapshot_prefix"]["default"]
    assert prefix == defaults_file["image"]["snapshot_prefix"] == ImageConfig().snapshot_prefix


def test_every_variable_is_described_and_none_holds_a_key(variables):
    assert set(variables) == VARIABLE_NAMES
    for name, variable in variables.items():
        assert variable.get("description"), name
        assert not re.search(r"key|token|secret|password", name), name


def test_the_state_timeout_outlasts_a_large_snapshot(variables):
    value = variables["state_timeout"]["default"]
    minutes = int(value[:-1]) * {"m": 1, "h": 60}[value[-1]]
    assert timedelta(minutes=minutes) > timedelta(minutes=20)  # a 120 GB snapshot can take that


def test_vgpu_plans_are_refused_as_the_configuration_says(variables):
    vgpu = variables["vgpu"]
    assert vgpu["default"] is False
    (rule,) = vgpu["validation"]
    assert rule["condition"] == "${var.vgpu == false}"
    assert "GRID" in rule["error_message"] and "licence" in rule["error_message"]
    defaults_file = yaml.safe_load((ROOT / "configs" / "launcher.yaml").read_text())
    assert defaults_file["image"]["supports_vgpu"] is False


def test_s5cmd_is_the_launchers_own_pin(variables):
    pin = f"s5cmd=={variables['s5cmd_version']['default']}"
    assert f'"{pin}"' in (ROOT / "pyproject.toml").read_text()


def test_the_scripts_run_in_order_with_the_shared_environment(build, template):
    assert build["sources"] == ["source.vultr.gpu"]
    shells = [p["shell"] for p in build["provisioner"] if "shell" in p]
    scripted = [s for s in shells if "scripts" in s]
    assert len(scripted) == 1
    scripts = [s.rsplit("/", 1)[-1] for s in scripted[0]["scripts"]]
    assert scripts == SCRIPTS == ["10-base.sh", "20-nvidia.sh", "30-cuda.sh", "40-python.sh",
                                  "90-cleanup.sh"]
    env = dict(v.split("=", 1) for v in scripted[0]["environment_vars"])
    assert set(env) >= SCRIPT_ENVIRONMENT and env["INSTALL_NVIDIA"] == "1"
    uploads = {p["file"]["destination"]: p["file"]["source"]
               for p in build["provisioner"] if "file" in p}
    (local_block,) = template["locals"]
    assert set(uploads) == {"${local.guest_requirements}", "${local.guest_lib}"}
    assert env["PYTHON_REQUIREMENTS"] == "${local.guest_requirements}"
    assert local_block["guest_requirements"] == "/tmp/launcher-bake/requirements.txt"


def test_the_library_is_uploaded_beside_where_the_scripts_run(build, template):
    # Packer uploads each script as <remote_folder>/script_<n>.sh; every script sources lib.sh
    # from its own folder, so lib.sh goes to that folder, after the mkdir, before the scripts.
    (local_block,) = template["locals"]
    steps = build["provisioner"]
    (mkdir,) = [i for i, p in enumerate(steps) if "inline" in p.get("shell", {})]
    (upload,) = [i for i, p in enumerate(steps)
                 if p.get("file", {}).get("destination") == "${local.guest_lib}"]
    (scripts,) = [i for i, p in enumerate(steps) if "scripts" in p.get("shell", {})]
    assert mkdir < upload < scripts
    assert steps[mkdir]["shell"]["inline"] == ["mkdir -p ${local.guest_dir}"]
    assert steps[upload]["file"]["source"] == f"${{path.root}}/scripts/{LIBRARY}"
    assert steps[scripts]["shell"]["remote_folder"] == "${local.guest_dir}"
    assert local_block["guest_lib"] == f"{local_block['guest_dir']}/{LIBRARY}"
    assert (PACKER / "scripts" / LIBRARY).is_file()


def test_a_manifest_records_the_snapshot(build):
    (post,) = build["post-processor"]
    manifest = post["manifest"]
    assert manifest["output"] == "${path.root}/manifest.json"
    assert manifest["custom_data"]["snapshot_description"] == "${local.snapshot_description}"
    assert "manifest.json" in (PACKER / ".gitignore").read_text().split()
    assert "launcher images --manifest packer/manifest.json" in (ROOT / "Makefile").read_text()


def test_the_requirements_are_pinned():
    lines = [line.strip() for line in (PACKER / "requirements" / "train.txt").read_text()
             .splitlines() if line.strip() and not line.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][A-Za-z0-9.+-]*", line) for line in lines)
    assert any(line.startswith("torch==") for line in lines)


# -- the tools, where they exist --------------------------------------------------------------

def _tool(name: str) -> str:
    found = shutil.which(name)
    need(bool(found), f"{name} is not installed (apt-get install {name})")
    return found


def _packer_version(packer: str) -> tuple[int, ...]:
    out = subprocess.run([packer, "version"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"v?(\d+)\.(\d+)\.(\d+)", out)
    assert found, out
    return tuple(int(n) for n in found.groups())


def test_shellcheck_is_clean():
    shellcheck = _tool("shellcheck")
    result = subprocess.run([shellcheck, "-x", *(f"scripts/{s}" for s in [*SCRIPTS, LIBRARY])],
                            cwd=PACKER, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_packer_fmt_leaves_the_template_alone():
    packer = _tool("packer")
    result = subprocess.run([packer, "fmt", "-check", "-diff", "."], cwd=PACKER,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_packer_validate_syntax_only():
    packer = _tool("packer")
    version = _packer_version(packer)
    if version < (1, 10, 0):
        pytest.skip(f"packer {'.'.join(map(str, version))} cannot read this template "
                    "(required_plugins and `packer init` need >= 1.7; it asks >= 1.10.0)")
    result = subprocess.run([packer, "validate", "-syntax-only", "."], cwd=PACKER,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
