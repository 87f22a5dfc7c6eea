# shellcheck shell=bash
# lib.sh: the helpers every provisioning script shares. Not a step: each [0-9]*.sh sources it
# from its own directory after setting NAME (the prefix of its messages), e.g.
#   NAME=10-base
#   # shellcheck source=SCRIPTDIR/lib.sh
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# It only defines functions and the apt command line; it runs nothing.
#
# Where it is found: a bake uploads it to /tmp/launcher-bake/ (the template's file provisioner)
# and runs the scripts from that folder (the shell provisioner's remote_folder); the test VM
# image (tests/vmhost/recipe.py) puts its text in place of the `source` line of each script.

export DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a
# Waits for another apt (cloud-init's first boot) instead of failing, keeps changed configs.
# shellcheck disable=SC2034  # used by the scripts that source this file
APT=(apt-get -y -q -o DPkg::Lock::Timeout=600
     -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

log() { printf '[%s] %s\n' "${NAME:?}" "$*"; }
die() { printf '[%s] error: %s\n' "${NAME:?}" "$*" >&2; exit 1; }
os_field() { sed -n "s/^$1=//p" /etc/os-release | tr -d '"'; }
require_root() { [ "$(id -u)" -eq 0 ] || die "run as root"; }

in_chroot() {
    if command -v systemd-detect-virt >/dev/null 2>&1; then
        systemd-detect-virt --chroot --quiet
        return
    fi
    [ "$(stat -c %d:%i /)" != "$(stat -c %d:%i /proc/1/root/. 2>/dev/null || echo none)" ]
}

systemd_running() { [ -d /run/systemd/system ] && ! in_chroot; }

# nvidia_step WHAT: the INSTALL_NVIDIA switch of the NVIDIA steps. 0 ends the script (exit 0),
# saying that WHAT is skipped; anything but 1 or 0 is refused.
nvidia_step() {
    case "${INSTALL_NVIDIA:-1}" in
        0) log "INSTALL_NVIDIA=0: skipping $1"; exit 0 ;;
        1) ;;
        *) die "INSTALL_NVIDIA must be 1 or 0, not '${INSTALL_NVIDIA}'" ;;
    esac
}
