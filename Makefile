# Two entry points, both self-contained on a fresh machine with Python >= 3.10:
#   make bench   build .venv, install keepwarm with its benchmark extra, run `keepwarm bench`
#   make test    build .venv, install the test extra, run ruff, mypy --strict and pytest (-W error)
#                on the newest requests and urllib3; then build .venv-lowest with the same extra
#                held to the lowest requests and urllib3 pyproject.toml accepts
#                (constraints/lowest.txt) and run the whole suite again there (pytest-lowest),
#                less the linter's files (LINTER_FILES: the linter reads source with the
#                standard library's ast and never imports the runtime, as
#                tests/test_architecture.py holds; nothing in them runs requests or urllib3).
#                Lint and typecheck run on the newest versions only: mypy --strict needs the
#                inline annotations requests ships from 2.34.0 on. Last, where they are
#                installed, the oldest and newest CPython keepwarm supports (3.10, 3.13) each
#                run the files that depend on the Python version (pytest-pythons).
# And, not part of `make test` (it installs requests' own test dependencies in a throwaway
# virtualenv and takes ~4 minutes):
#   make requests-suite   requests' own test suite against keepwarm.Session (docs/COMPATIBILITY.md)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

# The lowest supported versions: a second virtualenv, built from pyproject.toml with
# constraints/lowest.txt as pip constraints; rebuilt when either file changes.
LOWEST      ?= .venv-lowest
LOWEST_BIN   = $(LOWEST)/bin
LOWEST_PINS  = constraints/lowest.txt

LINT_PATHS = src tests $(wildcard benchmarks scripts)

# Other CPython versions, each in its own virtualenv (.venv-3.10, ...) with the test extra,
# rebuilt when pyproject.toml changes; a version not installed is named and skipped. They
# run the files whose outcome depends on the Python version: the fence's copies of the
# standard library and their fingerprints, parity with requests (cookie order, http.client,
# email), warnings' call sites, the pytest plugin, docstrings, TLS and socket errors.
# (pythonX.Y on PATH, else an X.Y that pyenv installed).
OTHER_PYTHONS ?= 3.10 3.13
PYTHON_FILES = tests/test_upstream.py tests/test_http11.py tests/test_parity.py \
	tests/test_prepare.py tests/test_threads.py tests/test_guard_cookies.py \
	tests/test_pytest_plugin.py tests/test_docs.py tests/test_faults.py \
	tests/test_streaming.py tests/test_hpack_fields.py tests/test_pool.py
# Run once per Python, not also through the layers the flat first attempt stands for: that
# comparison is between keepwarm's and urllib3's code paths, made on the newest and the
# lowest urllib3 (test_faults.py's keepwarm-layered client, ~10 s a run).
PYTHON_DESELECT = -k "not keepwarm-layered"

# Every pytest run below is spread over WORKERS pytest-xdist processes: about half of the
# suite's time is waiting (loopback servers, timeouts, child processes), so two workers
# halve it even on two cores (the main run took 6 min 38 s in one process, 3 min 34 s in
# two, on the build machine). A file's tests stay in one worker (--dist loadfile: its
# module-scoped servers start once). WORKERS=0 runs in pytest's own process (for --pdb).
WORKERS ?= 2
XDIST = -n $(WORKERS) --dist loadfile

# Not run again on the lowest requests and urllib3: ~28 s of the ~5 min that run takes.
LINTER_FILES = tests/test_lint.py tests/test_lint_fix.py tests/test_lint_flake8.py

.PHONY: bench test lint typecheck pytest pytest-lowest pytest-pythons requests-suite clean

# The two pytest runs share loopback servers and timing-sensitive tests (and bench times
# itself): never let `make -j` overlap them.
.NOTPARALLEL:

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$*]'
	touch $@

$(LOWEST_BIN)/python:
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST_BIN)/python -m pip install --quiet --upgrade pip

# -c moves an already installed newer release down to its pin, or up when a pin is raised.
$(LOWEST)/.installed-test: pyproject.toml $(LOWEST_PINS) | $(LOWEST_BIN)/python
	$(LOWEST_BIN)/python -m pip install --quiet -c $(LOWEST_PINS) -e '.[test]'
	touch $@

bench: $(VENV)/.installed-bench
	$(BIN)/keepwarm bench $(ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

pytest: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(XDIST) $(ARGS)

# Checked on every run, not only at install: the pins must match pyproject.toml's floors and
# be what is installed. No cache provider: --lf/--ff keep following the main run.
pytest-lowest: $(LOWEST)/.installed-test
	$(LOWEST_BIN)/python scripts/check_lowest.py $(LOWEST_PINS)
	$(LOWEST_BIN)/python -m pytest -p no:cacheprovider $(XDIST) \
	    $(addprefix --ignore=,$(LINTER_FILES)) $(ARGS)

pytest-pythons:
	@set -e; for v in $(OTHER_PYTHONS); do \
	    py=; \
	    if python$$v -c "" >/dev/null 2>&1; then py=python$$v; fi; \
	    for p in $${PYENV_ROOT:-$$HOME/.pyenv}/versions/$$v.*/bin/python$$v; do \
	        if [ -z "$$py" ] && [ -x "$$p" ]; then py=$$p; fi; \
	    done; \
	    if [ -z "$$py" ]; then \
	        echo "CPython $$v is not installed: the Python-dependent files were not run on it"; \
	        continue; \
	    fi; \
	    venv=.venv-$$v; \
	    if [ ! -f $$venv/.installed-test ] || [ pyproject.toml -nt $$venv/.installed-test ]; then \
	        rm -rf $$venv; \
	        $$py -m venv $$venv; \
	        $$venv/bin/python -m pip install --quiet --upgrade pip; \
	        $$venv/bin/python -m pip install --quiet -e '.[test]'; \
	        touch $$venv/.installed-test; \
	    fi; \
	    echo "== $$($$venv/bin/python -V)"; \
	    $$venv/bin/python -m pytest -p no:cacheprovider -q $(XDIST) $(PYTHON_DESELECT) $(PYTHON_FILES); \
	done

test: lint typecheck pytest pytest-lowest pytest-pythons

requests-suite: $(VENV)/.installed-test
	scripts/requests_suite.sh $(ARGS)

clean:
	rm -rf $(VENV) $(LOWEST) .venv-3.* .pytest_cache .mypy_cache .ruff_cache
