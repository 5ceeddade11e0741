# Two entry points, both self-contained on a fresh machine with Python >= 3.10:
#   make bench   build .venv, install keepwarm with its benchmark extra, run `keepwarm bench`
#   make test    build .venv, install the test extra, run ruff, mypy --strict and pytest (-W error)
# And, not part of `make test` (it installs requests' own test dependencies in a throwaway
# virtualenv and takes ~4 minutes):
#   make requests-suite   requests' own test suite against keepwarm.Session (docs/COMPATIBILITY.md)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

LINT_PATHS = src tests $(wildcard benchmarks scripts)

.PHONY: bench test lint typecheck pytest requests-suite clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$*]'
	touch $@

bench: $(VENV)/.installed-bench
	$(BIN)/keepwarm bench $(ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

pytest: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(ARGS)

test: lint typecheck pytest

requests-suite: $(VENV)/.installed-test
	scripts/requests_suite.sh $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
