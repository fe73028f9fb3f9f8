# Two entry points, both idempotent on a fresh clone:
#   make run   set up .venv (+ the cdk CLI) and run the full local pipeline (`mlops run`)
#   make test  set up, then ruff, mypy and the test suite
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# checkov pins its own boto3 and more, which clash with ours: it lives in a venv of its own
# (tests/infra/test_infra_checkov.py runs it from there).
CHECKOV_VENV := .venv-checkov
# Azure's inference server (and the Azure ML environment it runs in) pins pydantic 2.12 and flask 3.1:
# a venv of its own too (tests/pipelines/azure/test_inference_server.py serves our scoring script there).
AZURE_VENV := .venv-azure
UV := $(BIN)/uv
# Where this machine keeps the CPU build of torch (pip finds it through its config; uv must be told).
WHEELS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels)
# The set-up re-runs only when what it installs from changes.
STAMP := $(VENV)/.setup-$(shell cat pyproject.toml requirements.lock requirements-checkov.lock requirements-azure.lock package.json | sha1sum | cut -c1-12)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
# PYTHONDONTWRITEBYTECODE is set on these machines: every subprocess would compile what it imports
# again. Empty, Python writes bytecode as it imports, once, only for what is used (measured on a fresh
# clone: 50 s less CPU than compiling all of site-packages at set-up, which took 51 s of it).
export PYTHONDONTWRITEBYTECODE :=

.PHONY: setup run test lint typecheck unit bench synth clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock requirements-checkov.lock requirements-azure.lock package.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# pip stays in the venv (the dependency tests ask it what the registry holds); uv installs:
	# measured on a fresh cache, 31 s where pip takes 105 s for the same locked set.
	$(BIN)/python -m pip install --quiet --upgrade 'pip>=24' 'uv==0.13.10'
	# requirements.lock pins every transitive version: a fast, reproducible resolve. torch is the
	# CPU build on this machine's disk: uv does not read pip's config, so its folder is named here.
	$(UV) pip install --python $(BIN)/python --quiet $(WHEELS) -e '.[dev]' -c requirements.lock
	npm ci --no-audit --no-fund --silent
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(UV) pip install --python $(CHECKOV_VENV)/bin/python --quiet -r requirements-checkov.lock
	test -x $(AZURE_VENV)/bin/python || $(PYTHON) -m venv $(AZURE_VENV)
	$(UV) pip install --python $(AZURE_VENV)/bin/python --quiet -r requirements-azure.lock
	rm -f $(VENV)/.setup-*
	touch $@

run: setup
	$(BIN)/mlops run

lint: setup
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest

# Three workers, a test file each at a time (module fixtures such as an e2e run stay on one worker):
# much of the suite waits on subprocesses starting (Spark, Java, the toolkits), so on 2 cores three
# overlap best (measured: 455 s serial, 341 s with two, 313 s with three).
test: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -n 3 --dist loadfile

synth: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" npx cdk synth --quiet

bench: setup
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(AZURE_VENV) node_modules cdk.out .mlops .pytest_cache .mypy_cache .ruff_cache
