# dynorm: two commands on a fresh machine (Python >= 3.10, Java 17+, Node/npm or Docker).
#   make demo   installs dynorm alone into .venv and runs the shop demo on DynamoDB Local
#   make test   installs everything and runs lint, type checks, the whole test suite and the docs build

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install demo test matrix lint typecheck pytest docs docs-serve browser clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,docs]"
	touch $@

install: $(VENV)/.installed

# The demo needs dynorm and its three dependencies, not the test and docs toolchain.
$(VENV)/.demo-installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e .
	touch $@

demo: $(VENV)/.demo-installed
	$(PY) examples/shop.py

lint: install
	$(BIN)/ruff check dynorm tests examples benchmarks

# pyright reads the venv's packages through --pythonpath (else it asks the `python` on PATH):
# dynorm/ and the examples in pyright's default mode, tests/typing strict (pyproject.toml).
typecheck: install
	$(BIN)/mypy dynorm
	$(BIN)/mypy tests/typing
	$(BIN)/pyright --pythonpath $(PY) dynorm tests/typing examples

# The docs browser check screenshots the site with Debian's headless Chromium.
browser:
	@command -v chromium >/dev/null 2>&1 || ( $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null )

pytest: install browser
	$(PY) -m pytest -n 2 --dynorm-fail-on-skip

docs: install
	$(BIN)/mkdocs build --strict

docs-serve: install
	$(BIN)/mkdocs serve

test: lint typecheck pytest docs

# The compatibility matrix (noxfile.py): Python 3.10-3.13 x the lowest and the newest pydantic
# and boto3, each in a fresh uv venv, on one DynamoDB Local. CI runs it after `make test`.
$(VENV)/.ci-installed: pyproject.toml $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[ci]"
	touch $@

matrix: $(VENV)/.ci-installed
	$(BIN)/nox

clean:
	rm -rf $(VENV) site .nox .pytest_cache .mypy_cache .ruff_cache
