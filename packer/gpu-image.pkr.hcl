# The launcher's GPU image: Ubuntu + NVIDIA datacenter driver + CUDA toolkit + a Python venv
# with torch + s5cmd, saved as a Vultr snapshot described
#   <snapshot_prefix><base_os>-<driver branch>-<cuda version>-<yyyymmdd>
# e.g. launcher-gpu-ubuntu2204-550-12.4-20261101, which `image: latest` finds.
#
# Run it with `make bake-image` (packer init + build, then prints the snapshot); the key is read
# by the plugin from VULTR_API_KEY. Inputs: variables.pkr.hcl. Guide: docs/bake.md.

packer {
  required_version = ">= 1.10.0"
  required_plugins {
    # 2.6.0 to 2.6.4 shipped archives `packer init` cannot install (packer-plugin-vultr #365
    # changed their naming, #388 reports it); 2.7.0 fixed that (#389), with the builder's
    # arguments (builder/vultr/config.go) unchanged since 2.6.0.
    vultr = {
      source  = "github.com/vultr/vultr"
      version = "= 2.7.0"
    }
  }
}

locals {
  # Vultr os_id of each base image (GET /v2/os).
  os_ids = {
    ubuntu2204 = 1743
    ubuntu2404 = 2284
  }
  bake_date            = formatdate("YYYYMMDD", timestamp())
  snapshot_description = "${var.snapshot_prefix}${var.base_os}-${var.nvidia_driver_branch}-${var.cuda_version}-${local.bake_date}"
  requirements         = var.python_requirements != "" ? var.python_requirements : "${path.root}/requirements/train.txt"
  guest_dir            = "/tmp/launcher-bake"
  guest_requirements   = "/tmp/launcher-bake/requirements.txt"
  guest_lib            = "/tmp/launcher-bake/lib.sh"
}

source "vultr" "gpu" {
  # api_key is deliberately not set: the plugin reads VULTR_API_KEY from the environment.
  region_id            = var.region
  plan_id              = var.build_plan
  os_id                = local.os_ids[var.base_os]
  snapshot_description = local.snapshot_description
  instance_label       = "launcher-bake-${local.bake_date}"
  hostname             = "launcher-bake"
  state_timeout        = var.state_timeout
  ssh_username         = "root"
  ssh_timeout          = "20m"
}

build {
  name    = "launcher-gpu"
  sources = ["source.vultr.gpu"]

  provisioner "shell" {
    inline = ["mkdir -p ${local.guest_dir}"]
  }

  provisioner "file" {
    source      = local.requirements
    destination = local.guest_requirements
  }

  # The scripts' shared helpers: each script sources lib.sh from its own folder, so it is
  # uploaded to guest_dir and the scripts are run from there (remote_folder below).
  provisioner "file" {
    source      = "${path.root}/scripts/lib.sh"
    destination = local.guest_lib
  }

  # The same scripts, with INSTALL_NVIDIA=0, provision the Debian image of the VM end-to-end
  # tests; their interface is the environment below (see docs/bake.md).
  provisioner "shell" {
    environment_vars = [
      "INSTALL_NVIDIA=1",
      "NVIDIA_DRIVER_BRANCH=${var.nvidia_driver_branch}",
      "CUDA_VERSION=${var.cuda_version}",
      "PYTHON_REQUIREMENTS=${local.guest_requirements}",
      "S5CMD_VERSION=${var.s5cmd_version}",
      "DEBIAN_FRONTEND=noninteractive",
    ]
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} bash {{ .Path }}"
    remote_folder   = local.guest_dir
    scripts = [
      "${path.root}/scripts/10-base.sh",
      "${path.root}/scripts/20-nvidia.sh",
      "${path.root}/scripts/30-cuda.sh",
      "${path.root}/scripts/40-python.sh",
      "${path.root}/scripts/90-cleanup.sh",
    ]
  }

  post-processor "manifest" {
    output     = "${path.root}/manifest.json"
    strip_path = true
    custom_data = {
      snapshot_description = local.snapshot_description
      base_os              = var.base_os
      nvidia_driver_branch = var.nvidia_driver_branch
      cuda_version         = var.cuda_version
      region               = var.region
      build_plan           = var.build_plan
    }
  }
}
