# `make demo` and `make test` work on a fresh machine: each creates what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PHOENIX_VENV := .tools-phoenix
PHOENIX_VERSION := arize-phoenix>=20,<21

.PHONY: demo test lint bench audit clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[dev,optuna,dask,viz,mpi,ray]'
	touch $@ $(VENV)/.installed

# Phoenix (the integration tests' OTLP receiver) gets its own venv: its dependencies must not
# decide the versions modeltel is tested against.
$(PHOENIX_VENV)/bin/phoenix:
	$(PYTHON) -m venv $(PHOENIX_VENV)
	$(PHOENIX_VENV)/bin/pip install -q -U pip
	$(PHOENIX_VENV)/bin/pip install -q '$(PHOENIX_VERSION)'

demo: $(VENV)/.installed
	$(VENV)/bin/modeltel demo

test: $(VENV)/.installed-dev $(PHOENIX_VENV)/bin/phoenix
	$(PY) -m pytest

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/ruff format --check src tests bench examples
	$(VENV)/bin/mypy

bench: $(VENV)/.installed-dev
	$(PY) bench/overhead.py

# Runtime dependencies only (the `dependencies` of pyproject.toml, as installed), in a tool venv.
audit: $(VENV)/.installed
	test -x .tools-audit/bin/pip-audit || ($(PYTHON) -m venv .tools-audit && .tools-audit/bin/pip install -q pip-audit)
	$(PY) -c "import importlib.metadata as m, re; names = {re.split(r'[ <>=;\[]', r)[0].lower() for r in m.requires('modeltel') if 'extra ==' not in r}; print('\n'.join(f'{d.name}=={d.version}' for d in m.distributions() if d.name.lower() in names))" > .tools-audit/runtime.txt
	timeout 300 .tools-audit/bin/pip-audit --no-deps --progress-spinner off -r .tools-audit/runtime.txt

clean:
	rm -rf $(VENV) $(PHOENIX_VENV) .tools-audit modeltel-data
