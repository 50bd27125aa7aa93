# scenariocast: set-up, demo, tests and lint.
# `make demo` and `make test` create .venv on first use with an interpreter >= 3.12:
# PYTHON if given, else the first python3.12/python3.13/python3 on PATH that is new enough,
# else the oldest 3.12+ (3.12 is the tested one) under `pyenv root`/versions.

SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
export PYTHONDONTWRITEBYTECODE ?=

PYTHON ?= $(shell \
  for c in python3.12 python3.13 python3; do \
    p=$$(command -v $$c 2>/dev/null) || continue; \
    $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p; exit 0; }; \
  done; \
  root=$$(pyenv root 2>/dev/null || echo $$HOME/.pyenv); \
  for p in $$(ls -d $$root/versions/3.* 2>/dev/null | sort -V); do \
    [ -x $$p/bin/python3 ] && $$p/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p/bin/python3; exit 0; }; \
  done)

.PHONY: venv demo test lint fmt bench bench-networks bench-watch bench-pymc clean

$(VENV)/.installed: pyproject.toml
	@if [ -z "$(PYTHON)" ]; then echo "No Python >= 3.12 found on PATH or under pyenv; run: make PYTHON=/path/to/python3.12" >&2; exit 1; fi
	@echo "Creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres]'
	@touch $@

venv: $(VENV)/.installed

demo: venv
	@bash scripts/demo.sh

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src

fmt: venv
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

test: venv lint
	$(BIN)/python -m pytest

bench: venv
	$(BIN)/python benchmarks/run.py

bench-networks: venv
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/networks.py

bench-watch: venv
	$(BIN)/python benchmarks/watch_sensitivity.py

bench-pymc: venv
	$(BIN)/python benchmarks/pymc_engine.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
