# The two commands README.md starts with. Each creates .venv itself.
#   make demo   installs structflow and runs the example flow against a local receiver
#   make test   installs the dev dependencies, syslog-ng and rsyslog, then runs every check

SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# The first interpreter on PATH that is Python 3.11 or newer.
PYTHON ?= $(shell for p in python3 python3.13 python3.12 python3.11 python; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)

.PHONY: demo test lint typecheck unit record-contract bench docs test-deps clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "structflow needs Python 3.11 or newer on PATH" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,dask,bench,docs,postgres,server]'
	touch $@ $(VENV)/.installed-base

demo: $(VENV)/.installed-base
	$(BIN)/python examples/demo.py

test-deps:
	bash scripts/install-test-deps.sh

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

unit: $(VENV)/.installed-dev test-deps
	$(BIN)/python -m pytest

# The record-contract tests again under every other Python >= 3.11 on this
# machine, each in its own cached .venv-3.X (see the script).
record-contract: $(VENV)/.installed-dev
	bash scripts/record-contract.sh

bench: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks

docs: $(VENV)/.installed-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# pytest exits 5 when it collected no test; that fails the target like any other
# error. The quick benchmark run is one of the tests (tests/test_benchmarks_smoke.py).
test: lint typecheck unit record-contract
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir $$(mktemp -d)

clean:
	rm -rf $(VENV) $(VENV)-3.* .cache site .mypy_cache .ruff_cache .pytest_cache
