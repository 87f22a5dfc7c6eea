# Every target uses the project's own virtual environment (.venv), made by `make install`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: install test lint demo emulator clean

install:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'

# The test command the README and CI use. The API layer must keep >= 90 % line coverage.
test:
	$(PY) -m pytest --cov=launcher --cov-report=term-missing:skip-covered
	$(PY) -m coverage report --include='launcher/vultr/*' --fail-under=90

lint:
	$(PY) -m ruff check .

# The offline demo: an emulated Vultr on 127.0.0.1, nothing leaves this machine.
demo:
	$(VENV)/bin/launcher demo

emulator:
	$(VENV)/bin/launcher emulator

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .coverage htmlcov *.egg-info
