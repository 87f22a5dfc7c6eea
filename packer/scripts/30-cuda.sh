#!/usr/bin/env bash
# 30-cuda.sh: the CUDA toolkit (nvcc, headers, libraries) from NVIDIA's apt repository, added
# through its cuda-keyring package. The toolkit package brings no driver: the driver is
# 20-nvidia.sh's (held there).
#
# INSTALL_NVIDIA=0 skips this step. CUDA_VERSION (default 12.4) picks cuda-toolkit-12-4.
set -euo pipefail

NAME=30-cuda
INSTALL_NVIDIA="${INSTALL_NVIDIA:-1}"
CUDA_VERSION="${CUDA_VERSION:-12.4}"
KEYRING_DEB=cuda-keyring_1.1-1_all.deb
export DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a
APT=(apt-get -y -q -o DPkg::Lock::Timeout=600
     -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

log() { printf '[%s] %s\n' "$NAME" "$*"; }
die() { printf '[%s] error: %s\n' "$NAME" "$*" >&2; exit 1; }
os_field() { sed -n "s/^$1=//p" /etc/os-release | tr -d '"'; }

check_inputs() {
    case "$INSTALL_NVIDIA" in
        0) log "INSTALL_NVIDIA=0: skipping the CUDA toolkit"; exit 0 ;;
        1) ;;
        *) die "INSTALL_NVIDIA must be 1 or 0, not '$INSTALL_NVIDIA'" ;;
    esac
    [[ "$CUDA_VERSION" =~ ^[0-9]+\.[0-9]+$ ]] ||
        die "CUDA_VERSION must be MAJOR.MINOR such as 12.4, not '$CUDA_VERSION'"
    [ "$(id -u)" -eq 0 ] || die "run as root"
}

repository_url() {
    # https://developer.download.nvidia.com/compute/cuda/repos/<ubuntu2204>/<x86_64>/
    local distro arch
    distro="$(os_field ID)$(os_field VERSION_ID | tr -d .)"
    case "$(dpkg --print-architecture)" in
        amd64) arch=x86_64 ;;
        arm64) arch=sbsa ;;
        *) die "no CUDA repository for architecture $(dpkg --print-architecture)" ;;
    esac
    printf 'https://developer.download.nvidia.com/compute/cuda/repos/%s/%s/' "$distro" "$arch"
}

add_repository() {
    if dpkg-query -W -f='${Status}' cuda-keyring 2>/dev/null | grep -q 'ok installed'; then
        log "cuda-keyring already installed"
        return
    fi
    local tmp
    tmp="$(mktemp -d)"
    log "adding NVIDIA's CUDA repository $(repository_url)"
    curl -fsSL --retry 5 -o "$tmp/$KEYRING_DEB" "$(repository_url)$KEYRING_DEB"
    dpkg -i "$tmp/$KEYRING_DEB"
    rm -rf "$tmp"
}

install_toolkit() {
    local package="cuda-toolkit-${CUDA_VERSION/./-}"
    "${APT[@]}" update
    log "installing ${package}"
    "${APT[@]}" install --no-install-recommends "$package"
    local nvcc="/usr/local/cuda-${CUDA_VERSION}/bin/nvcc"
    [ -x "$nvcc" ] || die "${package} installed no ${nvcc}"
    log "$("$nvcc" --version | tail -n 1)"
    cat >/etc/profile.d/cuda.sh <<EOF
# Written by the launcher image bake: nvcc and the CUDA tools on PATH in login shells.
export PATH="/usr/local/cuda-${CUDA_VERSION}/bin:\${PATH}"
EOF
}

check_inputs
add_repository
install_toolkit
log "done"
