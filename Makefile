# alertnet developer commands. `make` lists them; each target's help follows its `##`.
# `make check` runs exactly what CI runs (.ci/run: `CI=true make test`) plus the linters.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV := .venv
BIN := $(VENV)/bin
# Written after a successful install; holds the directory the venv was made for.
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help venv run test check lint fmt bench clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN {FS = ":.*## "} {printf "  %-7s %s\n", $$1, $$2}'

venv: $(INSTALLED) ## Create .venv (Python 3.11) and install alertnet[dev]; again when pyproject.toml changes

# A venv only works where it was made (its scripts name their interpreter by absolute path,
# the editable install points at one source tree): one copied or cloned from elsewhere is
# rebuilt rather than silently testing another checkout's code. A stamp written for another
# directory forces the check.
ifneq ($(shell cat $(INSTALLED) 2>/dev/null),$(CURDIR))
.PHONY: $(INSTALLED)
endif
$(INSTALLED): pyproject.toml
	@if [ -d $(VENV) ] && ! head -n1 $(BIN)/pip 2>/dev/null | grep -q '^#!$(CURDIR)/$(BIN)/python'; then \
		echo "make venv: $(VENV) was made for another directory; rebuilding it"; \
		rm -rf $(VENV); \
	fi
	@if [ ! -x $(BIN)/python ]; then \
		[ -n "$(PYTHON)" ] || { echo "make venv: no python3.11 or python3 on PATH" >&2; exit 1; }; \
		echo "$(PYTHON) -m venv $(VENV)"; \
		$(PYTHON) -m venv $(VENV); \
	fi
	$(BIN)/python -m pip install -e '.[dev]'
	@echo "$(CURDIR)" > $@

run: venv ## Migrate the database, then serve alertnet with demo data
	$(BIN)/alertnet migrate
	$(BIN)/alertnet serve --demo

test: venv ## Run the test suite (pytest, alembic check included); PYTEST_ARGS='-k x' to narrow
	$(BIN)/pytest tests $(PYTEST_ARGS)

lint: venv ## Static checks: ruff check, ruff format --check, mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

check: lint ## What CI runs, plus lint: the tests with CI=true (a missing service fails)
	CI=true $(MAKE) --no-print-directory test

fmt: venv ## Format the code and apply ruff's safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: venv ## Load bench with the firmware simulator: table, JSON and PNG in bench/results/ (BENCH_ARGS=--help)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean: ## Remove caches and build artefacts (keeps .venv and any local database)
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist ./*.egg-info src/*.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
