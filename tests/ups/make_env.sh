#!/usr/bin/env bash
# Build (or find) the CPU environment tests/ups run the training repository's scripts in:
# make_env.sh VENV PYTHON. The system's /usr/bin/python3 is preferred (3.10 or newer): as on
# an instance, the sandbox trains as an unprivileged user, who must be able to run it. Reaches
# PyPI (an install step: the tests themselves stay on loopback). Exit 0 with a note when it
# cannot: the tests then skip with the reason, or fail under CI=true.
set -uo pipefail
venv=${1:?venv folder}
python=${2:-python3}
if /usr/bin/python3 -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    python=/usr/bin/python3
fi
here=$(cd "$(dirname "$0")" && pwd)
stamp="$venv/.requirements.txt"
if [ -x "$venv/bin/python" ] && cmp -s "$here/requirements.txt" "$stamp" \
    && [ "$(readlink -f "$venv/bin/python")" = "$(readlink -f "$python")" ]; then
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
