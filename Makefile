# The two commands of the README: `make demo` and `make test`.
# Both bootstrap uv (into .bootstrap/) and the locked environment (.venv/) themselves.
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .bootstrap/bin/uv)
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 90
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: setup demo test lint bench notebooks

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

# JupyterLab with jupytext, from the locked `jupyter` dependency group (the tests do not need it):
# the percent-format scripts in notebooks/ open as notebooks, which notebooks/.jupyterlab/
# overrides.json makes the default viewer of .py files. More options through JUPYTER_ARGS, e.g.
# `make notebooks JUPYTER_ARGS="--no-browser --port=8890"`. Jupyter refuses to run as root unless
# told to (containers and CI machines often are root).
notebooks: $(if $(findstring .bootstrap,$(UV)),.bootstrap/bin/uv)
	$(UV) run --locked --group jupyter jupyter lab --ServerApp.root_dir=notebooks \
		--LabApp.app_settings_dir="$(CURDIR)/notebooks/.jupyterlab" \
		$(if $(filter 0,$(shell id -u)),--allow-root) $(JUPYTER_ARGS)
