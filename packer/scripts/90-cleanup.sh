#!/usr/bin/env bash
# 90-cleanup.sh: make the disk a generic image. cloud-init forgets this machine (so every
# instance booted from the snapshot runs it afresh), the machine id is emptied (regenerated at
# boot), SSH host keys and root's authorized keys are removed (cloud-init makes new ones and
# installs the launch's key), apt caches, bake files, logs and shell history are emptied.
set -euo pipefail

NAME=90-cleanup
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

forget_machine() {
    if command -v cloud-init >/dev/null 2>&1; then
        cloud-init clean --logs --seed
    else
        log "no cloud-init here: nothing to clean for it"
    fi
    if [ -e /etc/machine-id ]; then
        : >/etc/machine-id
    fi
    if [ -d /var/lib/dbus ]; then
        ln -sf /etc/machine-id /var/lib/dbus/machine-id
    fi
    rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub /root/.ssh/authorized_keys
}

empty_caches() {
    apt-get clean
    rm -rf /var/lib/apt/lists/* /tmp/launcher-bake /root/.cache /var/tmp/*
    rm -f /root/.bash_history
}

empty_logs() {
    if systemd_running; then
        journalctl --rotate >/dev/null 2>&1 || true
        journalctl --vacuum-time=1s >/dev/null 2>&1 || true
    else
        rm -rf /var/log/journal/*
    fi
    find /var/log -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \) -delete
    find /var/log -path /var/log/journal -prune -o -type f -exec truncate -s 0 {} +
}

require_root
forget_machine
empty_caches
empty_logs
sync
log "done"
