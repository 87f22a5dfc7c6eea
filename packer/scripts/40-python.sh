#!/usr/bin/env bash
# 40-python.sh: the training environment, a virtual environment at /opt/launcher/venv with the
# packages of PYTHON_REQUIREMENTS (a file inside this machine; default the requirements file
# the template uploads, /tmp/launcher-bake/requirements.txt). An empty file makes a bare venv.
#
# `python` and `python3` on the default PATH (/usr/local/bin, ahead of /usr/bin) run the venv's
# interpreter, so the runner's GPU probe and a stage's `python train.py` find torch. The system
# interpreter stays /usr/bin/python3 (the runner itself, cloud-init and apt name it by path).
# The installed set is written to /opt/launcher/venv/requirements.lock.
set -euo pipefail

NAME=40-python
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
VENV=/opt/launcher/venv
REQUIREMENTS="${PYTHON_REQUIREMENTS:-/tmp/launcher-bake/requirements.txt}"
PIP=(--no-cache-dir --disable-pip-version-check --no-input)

check_inputs() {
    [ -f "$REQUIREMENTS" ] ||
        die "PYTHON_REQUIREMENTS=$REQUIREMENTS: no such file (a path inside this machine)"
    require_root
    command -v python3 >/dev/null 2>&1 || die "python3 is missing: run 10-base.sh first"
}

make_venv() {
    if "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
        log "reusing $VENV ($("$VENV/bin/python" --version))"
        return
    fi
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    /usr/bin/python3 -m venv "$VENV"
    log "created $VENV ($("$VENV/bin/python" --version))"
}

install_requirements() {
    if ! grep -qvE '^[[:space:]]*(#|$)' "$REQUIREMENTS"; then
        log "$REQUIREMENTS lists nothing: the venv stays bare"
    else
        log "installing $REQUIREMENTS"
        "$VENV/bin/python" -m pip install "${PIP[@]}" --requirement "$REQUIREMENTS"
    fi
    "$VENV/bin/python" -m pip check
    "$VENV/bin/python" -m pip freeze --all >"$VENV/requirements.lock"
    log "$(wc -l <"$VENV/requirements.lock") packages recorded in $VENV/requirements.lock"
}

link_interpreters() {
    # Wrappers, not symlinks: a symlink to a venv's python does not activate the venv.
    local name
    for name in python python3; do
        printf '#!/bin/sh\n# Written by the launcher image bake: the training venv.\nexec %s "$@"\n' \
            "$VENV/bin/python" >"/usr/local/bin/$name"
        chmod 0755 "/usr/local/bin/$name"
    done
    cat >/etc/profile.d/launcher-venv.sh <<EOF
# Written by the launcher image bake: the training venv's tools on PATH in login shells.
export PATH="${VENV}/bin:\${PATH}"
EOF
}

report_torch() {
    if "$VENV/bin/python" -c 'import torch' >/dev/null 2>&1; then
        log "$("$VENV/bin/python" -c \
            'import torch; print(f"torch {torch.__version__}, built for CUDA {torch.version.cuda}")')"
    else
        log "no torch in $VENV"
    fi
}

check_inputs
make_venv
install_requirements
link_interpreters
report_torch
log "done"
