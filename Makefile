# The README's commands. `make train` runs a batch on the embedded defaults (embedded PostgreSQL,
# simulated LLM, no keys); `make test` runs the test suite. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: train test screenshots clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# --simulate applies the schema and seeds the personas of the embedded database itself.
train: $(VENV)/.installed
	$(PY) -m lib train --simulate

test: $(VENV)/.installed
	$(PY) -m pytest -q

# The dashboard screenshots, from simulated data (needs Debian's chromium), in artifacts/screenshots/;
# `make screenshots DOCS=1` replaces the README's in docs/screenshots/.
screenshots: $(VENV)/.installed
	$(PY) -m bench.screenshots $(if $(DOCS),--docs)

clean:
	rm -rf $(VENV) .data
