# alertnet developer commands. `make` lists them; each target's help follows its `##`.
# `make check` runs exactly what CI runs (.ci/run: `CI=true make test`) plus the linters.
#
# Installs come from the lock files, so every machine gets the versions CI tested:
# requirements/run.txt is what the server needs (`make run`), requirements/dev.txt adds the test,
# lint and bench tools (`make test`, `check`, `lint`, `fmt`, `bench`). `make lock` refreshes
# both from pyproject.toml.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV := .venv
BIN := $(VENV)/bin
RUN_LOCK := requirements/run.txt
DEV_LOCK := requirements/dev.txt
# Written after a successful install from each lock; each holds the directory the venv was
# made for.
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
PYTEST_ARGS ?=
# Where `make run` serves: `make run PORT=8001` when 8000 is taken.
HOST ?= 127.0.0.1
PORT ?= 8000
# `make lock UPGRADE=1` moves every pin to the newest release pyproject.toml allows; without it
# the pins already in the lock files are kept and only what pyproject.toml changed is resolved.
UPGRADE ?=
UV_COMPILE = $(BIN)/uv pip compile --quiet pyproject.toml --universal --python-version 3.11 \
	--custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade)

.PHONY: help venv dev run test check lint fmt bench lock clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN {FS = ":.*## "} {printf "  %-7s %s\n", $$1, $$2}'

venv: $(RUN_STAMP) ## Create .venv (Python 3.11) with what the server needs (requirements/run.txt)

dev: $(DEV_STAMP) ## Create .venv with the server and the dev tools (requirements/dev.txt)

# A venv only works where it was made (its scripts name their interpreter by absolute path,
# the editable install points at one source tree): one copied or cloned from elsewhere is
# rebuilt rather than silently testing another checkout's code. A stamp written for another
# directory forces the check.
define ensure-venv
	@if [ -d $(VENV) ] && ! head -n1 $(BIN)/pip 2>/dev/null | grep -q '^#!$(CURDIR)/$(BIN)/python'; then \
		echo "make: $(VENV) was made for another directory; rebuilding it"; \
		rm -rf $(VENV); \
	fi
	@if [ ! -x $(BIN)/python ]; then \
		[ -n "$(PYTHON)" ] || { echo "make: no python3.11 or python3 on PATH" >&2; exit 1; }; \
		echo "$(PYTHON) -m venv $(VENV)"; \
		$(PYTHON) -m venv $(VENV); \
	fi
endef

# Install lock $(1) and alertnet itself (editable, its dependencies being the lock's), then
# fail with a hint when the lock no longer satisfies pyproject.toml (extras $(2)).
define install-lock
	$(BIN)/python -m pip install --disable-pip-version-check -r $(1)
	$(BIN)/python -m pip install --disable-pip-version-check --no-deps -e .
	@$(BIN)/python requirements/check.py $(2) \
		|| { echo "make: $(1) does not satisfy pyproject.toml: run 'make lock'" >&2; exit 1; }
endef

ifneq ($(shell cat $(RUN_STAMP) 2>/dev/null),$(CURDIR))
.PHONY: $(RUN_STAMP)
endif
$(RUN_STAMP): pyproject.toml $(RUN_LOCK)
	$(ensure-venv)
	$(call install-lock,$(RUN_LOCK))
	@echo "$(CURDIR)" > $@

ifneq ($(shell cat $(DEV_STAMP) 2>/dev/null),$(CURDIR))
.PHONY: $(DEV_STAMP)
endif
$(DEV_STAMP): pyproject.toml $(DEV_LOCK)
	$(ensure-venv)
	$(call install-lock,$(DEV_LOCK),dev)
	@echo "$(CURDIR)" > $@

run: $(RUN_STAMP) ## Migrate the database, then serve alertnet with demo data (PORT=8000, HOST=127.0.0.1)
	$(BIN)/alertnet migrate
	$(BIN)/alertnet serve --demo --host $(HOST) --port $(PORT)

# Without paths in PYTEST_ARGS pytest runs its testpaths (tests/); with them, only those.
test: $(DEV_STAMP) ## Run the test suite (pytest, alembic check included); PYTEST_ARGS='tests/x -k y' to narrow
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(DEV_STAMP) ## Static checks: ruff check, ruff format --check, mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

check: lint ## What CI runs, plus lint: the tests with CI=true (a missing service fails)
	CI=true $(MAKE) --no-print-directory test

fmt: $(DEV_STAMP) ## Format the code and apply ruff's safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(DEV_STAMP) ## Load bench with the firmware simulator: table, JSON and PNG in bench/results/ (BENCH_ARGS=--help)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# uv comes pinned in the dev lock. The dev lock is resolved under the run lock's pins, so the
# server runs on the same versions with and without the dev tools.
lock: ## Re-resolve pyproject.toml into requirements/*.txt, keeping pins (UPGRADE=1: newest allowed)
	$(ensure-venv)
	$(BIN)/python -m pip install --disable-pip-version-check -q "$$(grep -E '^uv==' $(DEV_LOCK))"
	$(UV_COMPILE) -o $(RUN_LOCK)
	$(UV_COMPILE) --extra dev --constraint $(RUN_LOCK) -o $(DEV_LOCK)
	@echo "make lock: wrote $(RUN_LOCK) and $(DEV_LOCK); 'git diff requirements' shows what moved"

clean: ## Remove caches and build artefacts (keeps .venv and any local database)
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist ./*.egg-info src/*.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
