# Harmonic — developer entry points. Every target installs what it needs on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
export PYTHONDONTWRITEBYTECODE=1

.PHONY: install lint format test test-unit test-integration test-infra test-e2e bench clean

## install: create .venv with every pinned dependency (and the pinned CDK CLI)
install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-lock.txt layers/harmonic/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -c requirements-lock.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## lint: ruff check and ruff format --check
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## format: apply ruff fixes and formatting
format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# pytest exits 5 when it collects no test; a tier with no test yet is not a failure of the run.
PYTEST = $(PY) -m pytest
define run_pytest
	$(PYTEST) $(1) || { rc=$$?; [ $$rc -eq 5 ] && echo "pytest: no tests in $(1)" || exit $$rc; }
endef

## test: lint, then every test tier
test: install lint
	$(call run_pytest,tests)

test-unit: install
	$(call run_pytest,tests/unit)

test-integration: install
	$(call run_pytest,tests/integration)

test-infra: install
	$(call run_pytest,tests/infra)

test-e2e: install
	$(call run_pytest,tests/e2e)

## bench: DSP timings against the reference anchors, and cold-import time
bench: install
	$(PY) bench/dsp.py

clean:
	rm -rf $(VENV) node_modules cdk.out build .pytest_cache .ruff_cache .hypothesis
