# The two commands of the README: `make demo` and `make test`.
# Both bootstrap uv (into .bootstrap/) and the locked environment (.venv/) themselves.
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .bootstrap/bin/uv)
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 90
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: setup demo test lint bench notebooks mlflow-ui

.bootstrap/bin/uv:
	$(PYTHON) -m venv .bootstrap
	.bootstrap/bin/pip install --quiet --disable-pip-version-check "uv>=0.5"

setup: $(if $(findstring .bootstrap,$(UV)),.bootstrap/bin/uv)
	$(UV) sync --locked --quiet

# What a user types: `make demo` first; after it, `./leadmatch COMMAND` (finds uv wherever make
# put it) and `make mlflow-ui` (the MLflow UI on the store leadmatch writes to).
demo: setup
	$(UV) run --locked leadmatch demo

mlflow-ui: setup
	@echo 'MLflow UI: open http://127.0.0.1:5000/#/experiments?workflowType=machine_learning (the training and recommend runs; Ctrl+C stops it)'
	$(UV) run --locked mlflow ui --port 5000 --backend-store-uri "$$($(UV) run --locked python -c \
	  'from pipelines.config import LeadmatchConfig; from pipelines.tracking import tracking_uri; print(tracking_uri(LeadmatchConfig().tracking))')"

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
