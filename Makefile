# The two commands of the README:  make demo  and  make test.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONTACTS ?= 100000
DEMO_WS ?= demo-workspace
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup demo test check fmt clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## Build (or reuse) a sample workspace, evaluate every example segment (printing its size), save
## them as live segments, then serve the REST API and the web segment builder (Ctrl+C stops it).
## HOST (127.0.0.1), PORT (8000), CONTACTS (100000); RESET=1 rebuilds the workspace.
demo: setup
	CONTACTS=$(CONTACTS) DEMO_WS=$(DEMO_WS) HOST=$(HOST) PORT=$(PORT) bash scripts/demo.sh

## The whole test suite, as CI runs it.
test: setup
	bash scripts/services.sh
	$(BIN)/python -m pytest -q -n auto --dist loadfile --durations=25

check: setup
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache  # the layer contract: .importlinter

fmt: setup
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) $(DEMO_WS) .pytest_cache .mypy_cache .ruff_cache .hypothesis
