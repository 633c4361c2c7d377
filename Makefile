# Harmonic — developer entry points. Every target installs what it needs on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Node.js 22 LTS from the npm registry (package.json pins it), ahead of the machine's own, for the CDK CLI and
# for jsii (aws-cdk-lib runs its JavaScript in `node` from PATH).
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
export PYTHONDONTWRITEBYTECODE=1

.PHONY: toolchain bootstrap deploy destroy install lint format test test-unit test-integration test-infra test-e2e bench eval xspeaker-tools browser-tools cost run demo chaos spike redrive openapi asl schemas replay layer synth lint-cfn clean

## install: create .venv with every pinned dependency (and the pinned CDK CLI and Node.js); the client as users
## install it (editable; its dependencies are pinned with the rest), and the DSP library on the venv's path so
## that `harmonic plot` draws the f0 track with the service's own code
install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-lock.txt layers/harmonic/requirements.txt client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -c requirements-lock.txt
	$(PY) -m pip install --quiet --no-build-isolation --no-deps -e ./client
	$(PY) -c 'import site, sys; open(site.getsitepackages()[0] + "/harmonic-layer.pth", "w").write(sys.argv[1] + "\n")' "$(CURDIR)/layers/harmonic/python"
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

# `make test` runs the unit, integration and infra tiers on TEST_WORKERS processes (pytest-xdist; `worksteal`
# hands out single tests and lets an idle worker take queued ones from the busy one: 401 s here against 443 s
# for whole files per worker), BLAS single-threaded in each so that two workers do not fight over two cores;
# then the e2e tier alone, as before: its chaos, spike and breaker tests time a local stack and must not share
# the machine with other tests.
TEST_WORKERS ?= 2
PARALLEL_TIERS = tests/unit tests/integration tests/infra

## test: lint, then every test tier (unit, integration and infra in parallel; then e2e alone)
test: install browser-tools lint
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(call run_pytest,$(PARALLEL_TIERS) -n $(TEST_WORKERS) --dist worksteal)
	$(call run_pytest,tests/e2e)

test-unit: install
	$(call run_pytest,tests/unit)

test-integration: install
	$(call run_pytest,tests/integration)

test-infra: install
	$(call run_pytest,tests/infra)

test-e2e: install browser-tools
	$(call run_pytest,tests/e2e)

## eval: keyword-template and fingerprint accuracy per SNR, and query latency vs registry size; then the
## cross-speaker keyword table (bench/eval_keywords.py: template matcher beside PocketSphinx, material
## synthesized into build/xspeaker with the Debian engines that xspeaker-tools installs); then whether
## keyword examples are told from music (bench/eval_speech_check.py; sox makes two of its music generators)
eval: $(VENV)/.installed xspeaker-tools
	$(PY) bench/eval_matching.py
	$(PY) bench/eval_renditions.py
	$(PY) bench/eval_keywords.py
	$(PY) bench/eval_speech_check.py

## xspeaker-tools: the Debian speech synthesizers (and ALSA's recorded voice) that generate the cross-speaker
## material (scripts/make_xspeaker_testdata.py); tests use the committed subset and need none of them
# apt_install: the Debian packages $(1) that are not installed yet (root, or sudo)
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "apt-get install$$missing"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq$$missing; \
	fi
endef

XSPEAKER_DEBS := espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts alsa-utils sox
xspeaker-tools:
	$(call apt_install,$(XSPEAKER_DEBS))

## browser-tools: the system Chromium and its WebDriver, which the console's browser tests drive (tests/e2e/
## test_console.py; never a downloaded browser)
BROWSER_DEBS := chromium chromium-driver
browser-tools:
	$(call apt_install,$(BROWSER_DEBS))

## run: the whole system on 127.0.0.1 against moto (no AWS account, no Docker); PORT=8765 by default
PORT ?= 8765
run: $(VENV)/.installed
	$(PY) -m local --port $(PORT)

## demo: register a keyword and a fingerprint, run a clip through every mode (starts a local stack if none)
demo: $(VENV)/.installed
	$(PY) -m local.demo

## chaos: >= 200 invocations, concurrent clients, mixed modes, injected failures/crashes/duplicates
chaos: $(VENV)/.installed
	$(PY) -m local.chaos

## spike: a burst of 1,000 invocations at the local stack (SPIKE_MODE=pipeline|statemachine|events): 429s,
## peak queue depth per stage, drain time, latency p50/p95, lost
SPIKE_MODE ?= pipeline
spike: $(VENV)/.installed
	$(PY) -m local.spike --mode $(SPIKE_MODE)

## redrive: move dead-lettered stage messages back (AWS_ENDPOINT_URL=<local stack AWS URL> or QUEUE_PREFIX=<stack>)
redrive: $(VENV)/.installed
	$(PY) -m local.redrive

## openapi: regenerate docs/openapi.json from the API handler's routes and models
openapi: $(VENV)/.installed
	$(PY) scripts/export_openapi.py

## asl: regenerate statemachines/harmonic.asl.json from the stage table (functions/harmonic_service/stages/)
asl: $(VENV)/.installed
	$(PY) -m infra.asl

## schemas: regenerate docs/events/ (the JSON Schema of every event, from its model in events.py)
schemas: $(VENV)/.installed
	$(PY) scripts/export_event_schemas.py

## replay: replay the event archive's window onto the bus (SINCE=2026-11-30T09:00Z UNTIL=…, default now;
## AWS_ENDPOINT_URL=<local stack AWS URL> for the local stack, else EVENT_ARCHIVE=<stack output> in AWS)
SINCE ?=
UNTIL ?=
replay: $(VENV)/.installed
	$(PY) -m local.replay --since "$(SINCE)" $(if $(UNTIL),--until "$(UNTIL)")

## cost: monthly cost per mode (INVOCATIONS=1000000 CLIP_S=5 POLLS=3 MODE=sync|pipeline|statemachine JSON=1;
## prices in bench/prices.json, stage times from bench/results/operating.json written by `make bench`); then
## the figures `harmonic choose` cites (client/harmonic_client/figures.json)
INVOCATIONS ?= 1000000
CLIP_S ?= 5
POLLS ?= 3
MODE ?=
JSON ?=
cost: $(VENV)/.installed
	$(PY) bench/cost.py --invocations $(INVOCATIONS) --clip-s $(CLIP_S) --polls $(POLLS) $(if $(MODE),--mode $(MODE)) $(if $(JSON),--json)
	$(PY) scripts/export_choice_figures.py

## bench: DSP timings against the reference anchors and cold-import time (dsp.py); operating figures: stage
## times, cold starts, local-stack latency and throughput per mode, the parallel branch's speedup, layer sizes
## (operating.py → bench/results/), then the figures `harmonic choose` cites
bench: install
	$(PY) bench/dsp.py
	$(PY) bench/operating.py
	$(PY) scripts/export_choice_figures.py

## layer: build (or reuse from build/layers/) the Lambda layers for the default target (harmonic, deps, and
## speech, which exists for RUNTIME=3.13 only), and print their sizes
ARCH ?= arm64
RUNTIME ?= 3.13
layer: $(VENV)/.installed
	$(PY) -m infra.layer_build --layer all --architecture $(ARCH) --runtime $(RUNTIME)

## synth: CloudFormation into cdk.out with the pinned CDK CLI, offline; cdk-nag runs on every synth
CDK := node_modules/.bin/cdk
CDK_OFFLINE := CDK_DISABLE_CLI_TELEMETRY=true
synth: install
	$(CDK_OFFLINE) $(CDK) synth --quiet --no-notices

## toolchain: the versions of Node.js and the CDK CLI that synth and deploy run with (pinned in package.json)
toolchain: node_modules/.installed
	@echo "node $$(node --version)"
	@echo "cdk $$($(CDK) --version)"

## bootstrap, deploy, destroy: the path to AWS (README "Deploy to AWS"). PROFILE (an AWS CLI profile) and
## REGION choose the account and region; STACK names the stack (default Harmonic); CONTEXT passes cdk.json
## settings, e.g. CONTEXT="auth=api_key alarm_email=ops@example.com orchestration=pipeline,events".
PROFILE ?=
REGION ?=
STACK ?= Harmonic
CONTEXT ?=
AWS_ENV := $(if $(PROFILE),AWS_PROFILE=$(PROFILE)) $(if $(REGION),AWS_REGION=$(REGION) AWS_DEFAULT_REGION=$(REGION))
CDK_ARGS := --no-notices $(if $(PROFILE),--profile $(PROFILE)) -c stack_name=$(STACK) $(foreach setting,$(CONTEXT),-c $(setting))
OUTPUTS ?= cdk-outputs.json
bootstrap: install
	$(AWS_ENV) $(CDK) bootstrap $(CDK_ARGS)

deploy: install
	$(AWS_ENV) $(CDK) deploy $(STACK) $(CDK_ARGS) --require-approval broadening --outputs-file $(OUTPUTS)
	@echo "outputs in $(OUTPUTS); next: harmonic configure --from-outputs $(OUTPUTS)"

destroy: install
	$(AWS_ENV) $(CDK) destroy $(STACK) $(CDK_ARGS) --force

## lint-cfn: cfn-lint on the synthesized templates
lint-cfn: synth
	$(VENV)/bin/cfn-lint cdk.out/*.template.json

clean:
	rm -rf $(VENV) node_modules cdk.out build .pytest_cache .ruff_cache .hypothesis
