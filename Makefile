# The two commands of the README: `make demo` and `make test`.
# Both bootstrap uv (into .bootstrap/) and the locked environment (.venv/) themselves.
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .bootstrap/bin/uv)
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 90
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: setup demo test lint bench

.bootstrap/bin/uv:
	$(PYTHON) -m venv .bootstrap
	.bootstrap/bin/pip install --quiet --disable-pip-version-check "uv>=0.5"

setup: $(if $(findstring .bootstrap,$(UV)),.bootstrap/bin/uv)
	$(UV) sync --locked --quiet

demo: setup
	$(UV) run --locked leadmatch demo

test: setup
	$(UV) run --locked ruff check .
	$(UV) run --locked ruff format --check .
	$(UV) run --locked pytest

lint: setup
	$(UV) run --locked ruff check --fix .
	$(UV) run --locked ruff format .

bench: setup
	for script in benchmarks/bench_*.py; do $(UV) run --locked python $$script || exit 1; done
