# Every target uses the project's own virtual environment (.venv), made by `make install`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: install test e2e vm-image ups-env lint demo emulator clean bake-image validate-image bench bench-hydration

install:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'

# The test command the README and CI use, VM end-to-end tests (marker e2e) included. The API
# layer must keep >= 90 % line coverage. vm-image first builds (or finds) the e2e guest image;
# a machine that cannot (not root, no QEMU) is told why and the e2e tests skip with the reason.
# ups-env does the same for the training repository's CPU environment (tests/ups).
test: vm-image ups-env
	$(PY) -m pytest --cov=launcher --cov-report=term-missing:skip-covered
	$(PY) -m coverage report --include='launcher/vultr/*' --fail-under=90

# The end-to-end tests alone (docs/e2e.md): each run boots a QEMU virtual machine (root,
# qemu-system-x86, qemu-utils, debootstrap). The summary prints the timing table.
e2e: vm-image
	$(PY) -m pytest -m e2e tests/vm

# Build (or find) the cached guest image of the e2e tests; LAUNCHER_VM_CACHE moves the cache.
# It reaches the Debian mirror and PyPI (an install step: the tests themselves stay on loopback).
vm-image:
	$(PY) -m launcher.vmhost --if-possible

# The training repository's CPU environment for tests/ups: torch's CPU build and the part of
# its dependencies its scripts import (tests/ups/requirements.txt). Reaches PyPI once.
UPS_VENV ?= .venv-ups
ups-env:
	bash tests/ups/make_env.sh $(UPS_VENV) $(PYTHON)

lint:
	$(PY) -m ruff check .

# The offline demo: an emulated Vultr on 127.0.0.1, nothing leaves this machine.
demo:
	$(VENV)/bin/launcher demo

emulator:
	$(VENV)/bin/launcher emulator

# The GPU image (docs/bake.md). bake-image creates a billed build instance on Vultr and leaves a
# snapshot; the vultr plugin reads the key from VULTR_API_KEY, taken from VULTR_KEY when unset
# (export it: make does not read .env). Extra inputs: BAKE_VARS='-var base_os=ubuntu2404'.
PACKER    ?= packer
BAKE_VARS ?=

bake-image:
	@test -n "$${VULTR_API_KEY:-$${VULTR_KEY:-}}" || \
		{ echo "bake-image: set VULTR_KEY (or VULTR_API_KEY) in the environment" >&2; exit 2; }
	@$(PACKER) version 2>/dev/null | grep -Eq '^Packer v(1\.(1[0-9]|[2-9][0-9])|[2-9][0-9]*)\.' || \
		{ echo "bake-image: needs Packer >= 1.10 from HashiCorp (found: $$($(PACKER) version 2>/dev/null | head -n 1))" >&2; exit 2; }
	cd packer && $(PACKER) init .
	cd packer && VULTR_API_KEY="$${VULTR_API_KEY:-$$VULTR_KEY}" $(PACKER) build $(BAKE_VARS) .
	$(VENV)/bin/launcher images --manifest packer/manifest.json

# Offline checks of the template and scripts: packer fmt / validate where packer supports the
# template, shellcheck, and a parse of the template (each skipped, with the reason, without its tool).
validate-image:
	$(PY) -m pytest -q -rs tests/bake/test_template.py tests/bake/test_scripts.py

clean:
	rm -rf $(VENV) $(UPS_VENV) .pytest_cache .ruff_cache .coverage htmlcov *.egg-info

# Benchmarks, not tests (bench/README.md): each bench/*.py prints a table and a verdict.
bench:
	@test -x $(PY) || $(MAKE) install
	$(PY) -m pip install --quiet -e '.[bench]'
	@for script in bench/[!_]*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

bench-hydration:
	$(PY) bench/hydration.py
