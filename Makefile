# Every target uses the project's own virtual environment (.venv); the targets that need it make
# it when it is missing or older than pyproject.toml (`make install` remakes it on demand).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install test e2e vm-image ups-env system-deps package lint demo emulator clean bake-image validate-image bench bench-hydration

install:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(STAMP): pyproject.toml
	$(MAKE) install

# The system tools the tests use: Debian's cloud-init (schema of every rendered document),
# shellcheck and packer (the image bake), QEMU and debootstrap (the VM end-to-end tests), git,
# ssh-keygen (host-key pinning) and curl (the Vast onstart's destroy without python3).
# As root with apt-get they are installed; otherwise the exact command is printed, and the
# tests that need a missing one skip with its name (under CI=true they fail instead).
SYSTEM_PACKAGES := cloud-init shellcheck packer qemu-system-x86 qemu-utils debootstrap git \
	openssh-client curl
system-deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing:" $$missing; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else \
		echo "make test: missing system packages; install them with:" >&2; \
		echo "  sudo apt-get install -y --no-install-recommends" $$missing >&2; \
	fi

# The wheel and sdist (dist/; the wheel is built from the sdist, which proves the sdist holds
# what a rebuild needs) and their dependencies (.wheelhouse/), which tests/package installs
# into a fresh virtual environment without reaching PyPI. Reaches PyPI once.
package: $(STAMP)
	rm -rf dist
	$(PY) -m build --outdir dist . >/dev/null
	$(PY) -m pip download --quiet --dest .wheelhouse "$$(ls dist/launcher-*.whl)[offline]"

# The test command the README and CI use, VM end-to-end tests (marker e2e) included. The API
# layer must keep >= 90 % line coverage. vm-image first builds (or finds) the e2e guest image;
# a machine that cannot (not root, no QEMU) is told why and the e2e tests skip with the reason.
# ups-env does the same for the training repository's CPU environment (tests/ups).
test: $(STAMP) system-deps vm-image ups-env package
	$(PY) -m pytest --cov=launcher --cov-report=term-missing:skip-covered
	$(PY) -m coverage report --include='launcher/vultr/*' --fail-under=90

# The end-to-end tests alone (docs/e2e.md): each run boots a QEMU virtual machine (root,
# qemu-system-x86, qemu-utils, debootstrap). The summary prints the timing table.
e2e: vm-image
	$(PY) -m pytest -m e2e tests/vm

# Build (or find) the cached guest image of the e2e tests; LAUNCHER_VM_CACHE moves the cache.
# It reaches the Debian mirror and PyPI (an install step: the tests themselves stay on loopback).
vm-image: $(STAMP)
	PYTHONPATH=tests $(PY) -m vmhost --if-possible

# The training repository's CPU environment for tests/ups: torch's CPU build and the part of
# its dependencies its scripts import (tests/ups/requirements.txt). Reaches PyPI once.
UPS_VENV ?= .venv-ups
ups-env: $(STAMP)
	bash tests/ups/make_env.sh $(UPS_VENV) $(PYTHON)

lint: $(STAMP)
	$(PY) -m ruff check .

# The offline demo: an emulated cloud on 127.0.0.1, nothing leaves this machine.
# PROVIDER=vast runs it on an emulated Vast.ai (containers running the onstart) instead.
PROVIDER ?= vultr
demo: $(STAMP)
	$(VENV)/bin/launcher demo --provider $(PROVIDER)

emulator: $(STAMP)
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
	$(PY) -m pytest -q -rs tests/bake/test_template.py tests/bake/test_scripts.py tests/bake/test_plugin_spec.py

clean:
	rm -rf $(VENV) $(UPS_VENV) .pytest_cache .ruff_cache .coverage htmlcov *.egg-info dist .wheelhouse

# Benchmarks, not tests (bench/README.md): each bench/*.py prints a table and a verdict.
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	@for script in bench/[!_]*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

bench-hydration:
	$(PY) bench/hydration.py
