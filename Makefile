# The README's commands. `make train` runs a batch on the embedded defaults (embedded PostgreSQL,
# simulated LLM, no keys); `make test` runs the linter and the type checker, then the test suite
# (any finding fails it before a test runs); `make lint` runs only the first two; `make test-unit`
# runs only tests/unit (no PostgreSQL, no processes: seconds). All set up .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: train test test-unit lint screenshots clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# --simulate applies the schema and seeds the personas of the embedded database itself.
train: $(VENV)/.installed
	$(PY) -m lib train --simulate

# Settings in pyproject.toml: ruff's rules, mypy strict on lib/ (tests/ and bench/ a little less).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Two pytest-xdist workers, a test file each at a time (its module fixtures stay with it), each
# with its own embedded PostgreSQL (tests/conftest.py): the suite mostly waits on processes and
# servers, so two halve its time (about 5 minutes here, against 9.5 in one).
test: lint
	$(PY) -m pytest -q -n 2 --dist loadfile

test-unit: $(VENV)/.installed
	$(PY) -m pytest -q tests/unit

# The dashboard screenshots, from simulated data (needs Debian's chromium), in artifacts/screenshots/;
# `make screenshots DOCS=1` replaces the README's in docs/screenshots/.
screenshots: $(VENV)/.installed
	$(PY) -m bench.screenshots $(if $(DOCS),--docs)

clean:
	rm -rf $(VENV) .data
