#!/usr/bin/env bash
# 20-nvidia.sh: the NVIDIA datacenter driver (Ubuntu's -server branch, open kernel modules
# where packaged), nvidia-fabricmanager for NVSwitch systems, and persistence mode.
#
# INSTALL_NVIDIA=0 skips this step. NVIDIA_DRIVER_BRANCH (default 550) picks the branch.
# Compute-only ("headless") packages: the kernel modules, CUDA user-space driver and
# nvidia-smi of nvidia-driver-<branch>-server(-open), without the X server parts.
# Services are only enabled, never started, so this also works in a chroot. On a machine that
# has an NVIDIA GPU (a GPU build plan), the driver is loaded and checked with nvidia-smi.
#
# The kernel can change under the build: Vultr's vendor data may run a package upgrade on the
# build instance's first boot (cloud-init's Vultr test data holds one), installing a newer
# kernel than the running one, which the snapshot then boots. So headers are installed for
# every installed kernel and for the kernel flavour's meta package (DKMS builds the module
# for each), and every installed kernel must end up with an nvidia module (modinfo -k).
set -euo pipefail

NAME=20-nvidia
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BRANCH="${NVIDIA_DRIVER_BRANCH:-550}"
PRESENT=/usr/local/sbin/launcher-nvidia-present
MODULES_DIR="${MODULES_DIR:-/lib/modules}"

has_candidate() {
    local candidate
    candidate="$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')"
    [ -n "$candidate" ] && [ "$candidate" != "(none)" ]
}

upstream_version() { dpkg-query -W -f='${Version}' "$1" | sed 's/-.*//'; }

check_inputs() {
    nvidia_step "the NVIDIA driver"
    [[ "$BRANCH" =~ ^[0-9]{3}$ ]] ||
        die "NVIDIA_DRIVER_BRANCH must be a three-digit branch such as 550, not '$BRANCH'"
    require_root
    [ "$(os_field ID)" = ubuntu ] ||
        die "the driver comes from Ubuntu's nvidia-*-server packages; on $(os_field PRETTY_NAME) run with INSTALL_NVIDIA=0"
}

install_presence_probe() {
    # Used by the units below (ExecCondition) and by this script: is an NVIDIA GPU / NVSwitch
    # on the PCI bus? Read from sysfs, which the kernel fills before any service starts.
    cat >"$PRESENT" <<'EOF'
#!/bin/sh
# launcher-nvidia-present gpu|nvswitch: exit 0 when the PCI bus has such an NVIDIA device.
for dev in /sys/bus/pci/devices/*; do
    [ "$(cat "$dev/vendor" 2>/dev/null)" = 0x10de ] || continue
    case "$1:$(cat "$dev/class" 2>/dev/null)" in
        gpu:0x0300* | gpu:0x0302* | nvswitch:0x0680*) exit 0 ;;
    esac
done
exit 1
EOF
    chmod 0755 "$PRESENT"
}

install_driver() {
    local flavour
    "${APT[@]}" update
    if has_candidate "nvidia-headless-${BRANCH}-server-open"; then
        flavour=server-open
    elif has_candidate "nvidia-headless-${BRANCH}-server"; then
        flavour=server
    else
        die "no nvidia-headless-${BRANCH}-server(-open) package for $(os_field PRETTY_NAME); is branch ${BRANCH} still packaged? (apt-cache search nvidia-headless)"
    fi
    has_candidate "nvidia-fabricmanager-${BRANCH}" ||
        die "no nvidia-fabricmanager-${BRANCH} package for $(os_field PRETTY_NAME)"
    log "installing the ${BRANCH}-${flavour} driver and nvidia-fabricmanager-${BRANCH}"
    local headers
    mapfile -t headers < <(kernel_headers)
    "${APT[@]}" install --no-install-recommends "${headers[@]}" dkms \
        "nvidia-headless-${BRANCH}-${flavour}" "nvidia-utils-${BRANCH}-server" \
        "nvidia-fabricmanager-${BRANCH}"
    local driver fabric
    driver="$(upstream_version "nvidia-utils-${BRANCH}-server")"
    fabric="$(upstream_version "nvidia-fabricmanager-${BRANCH}")"
    [ "$driver" = "$fabric" ] ||
        die "nvidia-fabricmanager ${fabric} does not match the driver ${driver}: they must be equal"
    # Held: a later apt run must not split the driver, its libraries and the fabric manager.
    dpkg-query -W -f='${Package}\n' | grep -E "^(lib)?nvidia-.*${BRANCH}" | xargs -r apt-mark hold
    log "driver ${driver} (${flavour}) installed and held"
}

installed_kernels() { find "$MODULES_DIR" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V; }

kernel_headers() {
    # Headers for the running kernel, every installed one, and the flavour's meta package
    # (5.15.0-105-generic -> linux-headers-generic), so the newest kernel gets them too.
    local running kernel
    running="$(uname -r)"
    { echo "linux-headers-${running}"
      echo "linux-headers-${running##*[0-9]-}"
      installed_kernels | while read -r kernel; do echo "linux-headers-${kernel}"; done
    } | sort -u
}

check_modules() {
    local kernel missing=()
    while read -r kernel; do
        modinfo -k "$kernel" nvidia >/dev/null 2>&1 || missing+=("$kernel")
    done < <(installed_kernels)
    command -v dkms >/dev/null 2>&1 && dkms status | sed "s/^/[$NAME] dkms: /"
    [ "${#missing[@]}" -eq 0 ] ||
        die "no nvidia module for kernel(s) ${missing[*]}: the snapshot could boot one without a driver (a kernel upgraded during the build? see docs/bake.md)"
    log "an nvidia module for every installed kernel: $(installed_kernels | tr '\n' ' ')"
}

enable_services() {
    # Persistence mode keeps the driver initialised between processes (no per-process start-up
    # cost, no lost clocks/ECC state). Ubuntu's own unit starts the daemon with
    # --no-persistence-mode, so this unit replaces it; on a machine without an NVIDIA GPU it is
    # skipped, not failed.
    local user_flag=""
    getent passwd nvidia-persistenced >/dev/null && user_flag="--user nvidia-persistenced"
    cat >/etc/systemd/system/nvidia-persistenced.service <<EOF
[Unit]
Description=NVIDIA Persistence Daemon (persistence mode on)
After=systemd-modules-load.service

[Service]
Type=forking
ExecCondition=${PRESENT} gpu
ExecStartPre=/sbin/modprobe nvidia
ExecStart=/usr/bin/nvidia-persistenced ${user_flag} --verbose
ExecStopPost=/bin/rm -rf /var/run/nvidia-persistenced

[Install]
WantedBy=multi-user.target
EOF
    # The fabric manager is needed (and able to start) only where NVSwitches are present.
    mkdir -p /etc/systemd/system/nvidia-fabricmanager.service.d
    cat >/etc/systemd/system/nvidia-fabricmanager.service.d/launcher.conf <<EOF
[Service]
ExecCondition=${PRESENT} nvswitch
EOF
    systemctl enable nvidia-persistenced.service nvidia-fabricmanager.service
    log "nvidia-persistenced and nvidia-fabricmanager enabled (each runs only where its hardware is)"
}

verify_on_gpu() {
    if ! "$PRESENT" gpu; then
        log "no NVIDIA GPU on this machine: the driver is checked by the runner's health phase"
        return
    fi
    if ! systemd_running; then
        log "inside a chroot: not loading the driver"
        return
    fi
    modprobe nvidia || die "the nvidia kernel module does not load (see dmesg)"
    nvidia-smi -L ||
        die "nvidia-smi sees no GPU: a fractional (vGPU) plan needs the GRID driver, see docs/bake.md"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    # Pass-Through (or None) is what the datacenter driver serves; VGPU needs the GRID driver.
    nvidia-smi -q | grep -E 'Virtualization Mode' | sed "s/^ */[$NAME] /" || true
}

# Sourced (tests): the functions only.
[[ "${BASH_SOURCE[0]}" == "$0" ]] || return 0

check_inputs
install_presence_probe
install_driver
check_modules
enable_services
verify_on_gpu
log "done"
