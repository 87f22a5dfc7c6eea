#!/usr/bin/env bash
# 30-cuda.sh: the CUDA toolkit (nvcc, headers, libraries) from NVIDIA's apt repository, added
# through its cuda-keyring package. The toolkit package brings no driver: the driver is
# 20-nvidia.sh's (held there).
#
# INSTALL_NVIDIA=0 skips this step. CUDA_VERSION (default 12.4) picks cuda-toolkit-12-4.
set -euo pipefail

NAME=30-cuda
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CUDA_VERSION="${CUDA_VERSION:-12.4}"
KEYRING_DEB=cuda-keyring_1.1-1_all.deb

check_inputs() {
    nvidia_step "the CUDA toolkit"
    [[ "$CUDA_VERSION" =~ ^[0-9]+\.[0-9]+$ ]] ||
        die "CUDA_VERSION must be MAJOR.MINOR such as 12.4, not '$CUDA_VERSION'"
    require_root
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
