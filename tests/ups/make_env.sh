#!/usr/bin/env bash
# Build (or find) the CPU environment tests/ups run the training repository's scripts in:
# make_env.sh VENV PYTHON. Reaches PyPI (an install step: the tests themselves stay on
# loopback). Exit 0 with a note when it cannot: the tests then skip with the reason, or
# fail under CI=true.
set -uo pipefail
venv=${1:?venv folder}
python=${2:-python3}
here=$(cd "$(dirname "$0")" && pwd)
stamp="$venv/.requirements.txt"
if [ -x "$venv/bin/python" ] && cmp -s "$here/requirements.txt" "$stamp"; then
    exit 0
fi
rm -rf "$venv"
if "$python" -m venv "$venv" \
    && "$venv/bin/pip" install --quiet --disable-pip-version-check torch==2.13.0 \
    && "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
then
    cp "$here/requirements.txt" "$stamp"
    echo "ups-env: $venv ready ($(du -sh "$venv" | cut -f1))"
else
    rm -rf "$venv"
    echo "ups-env: could not build $venv; tests/ups skip (and fail under CI=true)" >&2
fi
exit 0
