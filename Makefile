# NetScope developer entry points. `make demo` and `make test` work from a clean clone
# on a fresh Linux machine: they create .venv, install the package and its test tools,
# and (for tests) the Debian tools the tests compare against.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup web-assets demo test test-fast lint bench system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

## Chart.js for the dashboard: pinned in package-lock.json, bundled into the package.
web-assets:
	bash scripts/build-web-assets.sh

# web-assets first: the package build (setup.py) bundles Chart.js and would otherwise run npm itself
setup: web-assets $(STAMP)

## Run the main job on the bundled sample trace.
demo: setup
	$(VENV)/bin/netscope --read-pcap samples/demo.pcap -c 15
	$(VENV)/bin/netscope --read-pcap samples/demo.pcap --quiet --stats --top-flows 3

system-deps:
	bash scripts/install-system-deps.sh

## Everything CI runs: lint, types, the full test suite (slow and privileged tests too).
test: setup system-deps
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy
	$(PY) -m pytest -q

## The quick loop while developing: no slow tests.
test-fast: setup
	$(PY) -m pytest -q -m "not slow"

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

## The benchmark suite and the side-by-side comparison, ending with the SPEC §9 table
## (~10 min; BENCH_ARGS=--quick for a ~1 min smoke run, --cold, --json PATH, --at HEAD).
BENCH_ARGS ?=
bench: setup
	$(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
