# Fresh machine: `make demo` or `make test`. Every target sets up what is missing and reuses
# what is there (the .venv, the engine, the registry, the base image, the wheelhouse, the
# Docker layer cache), so a second run only does the work.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VENV_STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help setup venv host lint unit test demo demo-stop fleet-demo fleet-stop serve stop status

help:
	@echo "make demo   run the pipeline: release this checkout's HEAD blue/green to the local target"
	@echo "make fleet-demo  the same release to a local Docker Swarm of 3 nodes (make fleet-stop)"
	@echo "make test   set up, then ruff, mypy and the whole test suite (unit + docker)"
	@echo "make unit   the fast tests only (-m 'not docker')"
	@echo "make lint   ruff check, ruff format --check, mypy"
	@echo "make setup  the .venv and the host (Docker engine, registry, HAProxy, base image)"
	@echo "make serve  the webhook receiver on the control plane (Prefect server + UI :4200 or PREFECT_API_URL's, worker)"
	@echo "make status the control plane (server, worker, deployments); make stop stops it"

venv: $(VENV_STAMP)

# Re-installed when pyproject.toml changes; the stamp is written only after a full install.
# A venv without pip (left by a `python3 -m venv` that lacked ensurepip) is made again; without
# ensurepip, pip is bootstrapped from Debian's pip wheel or the system pip, and as a last resort
# (root on Debian) python3-venv is installed.
$(VENV_STAMP): pyproject.toml
	@if [ -x $(BIN)/python ] && ! $(BIN)/python -m pip --version >/dev/null 2>&1; then \
	  echo "make: $(VENV) has no pip (an earlier creation failed); making it again"; rm -rf $(VENV); \
	fi
	@if [ ! -x $(BIN)/python ]; then $(MAKE_VENV); fi
	@echo "make: installing the project into $(VENV) (pip install -e '.[pipeline,dev]')"
	@# This machine's pip config names extra local indexes; their "ignored" warnings are noise.
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[pipeline,dev]' 2>&1 \
	  | { grep -v "is ignored: it is neither a file nor a directory" || true; }
	@touch $@

define MAKE_VENV
echo "make: creating $(VENV) with $$($(PYTHON) --version 2>&1)"; \
if $(PYTHON) -m venv $(VENV) 2>/dev/null; then exit 0; fi; \
rm -rf $(VENV); \
echo "make: '$(PYTHON) -m venv' failed (no ensurepip?); bootstrapping pip another way"; \
if $(PYTHON) -m venv --without-pip $(VENV); then \
  wheel=$$(ls /usr/share/python-wheels/pip-*.whl 2>/dev/null | tail -n 1 || true); \
  if [ -n "$$wheel" ] && $(BIN)/python "$$wheel/pip" install --quiet --no-index "$$wheel"; then exit 0; fi; \
  if $(PYTHON) -m pip --python $(BIN)/python install --quiet pip 2>/dev/null; then exit 0; fi; \
  rm -rf $(VENV); \
fi; \
if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then \
  echo "make: installing python3-venv with apt-get"; \
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv >/dev/null \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv >/dev/null; } \
    && $(PYTHON) -m venv $(VENV) && exit 0; \
  rm -rf $(VENV); \
fi; \
echo "make: cannot create $(VENV) with pip: install python3-venv (apt-get install python3-venv) or pass PYTHON=/path/to/python3.11" >&2; \
exit 1
endef

host:
	@bash scripts/setup-host.sh

setup: venv host

LINT = $(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

lint: venv
	$(LINT)

unit: venv
	$(BIN)/pytest -m "not docker" -n auto $(PYTEST_ARGS)

# Lint and tests both run, so one CI log shows every problem; either failing fails the target.
# (No recursive $(MAKE) here: `make -n test` must print the commands, not run the suite.)
test: setup
	@status=0; \
	$(LINT) || { status=$$?; echo "make: lint failed" >&2; }; \
	$(BIN)/pytest $(PYTEST_ARGS) || status=$$?; \
	exit $$status

# The main job: the pipeline releasing this checkout's committed HEAD to the local target
# (prod http://127.0.0.1:8080, preprod http://127.0.0.1:8081). Run it again after a commit:
# the new version goes blue/green with zero downtime and the counter continues.
# It submits a run of the deployment deliverypipeline/local to the control plane (the machine's
# Prefect server + worker, state under /var/lib/deliverypipeline/controlplane, started when missing
# and left running: `make stop`; or the team's server PREFECT_API_URL names), streams its logs,
# prints its UI address and fails when the run does; Ctrl-C cancels the run.
# Same local target as `make serve` (the configured local.state_dir, /var/lib/deliverypipeline/local).
demo: setup
	$(BIN)/deliverypipeline run --repo . --ref HEAD --target local
	@$(BIN)/deliverypipeline local status
	@eval "$$($(BIN)/deliverypipeline server env)"; \
	  echo "prod: http://127.0.0.1:8080/   preprod: http://127.0.0.1:8081/   Prefect UI: $$PREFECT_UI_URL/"

# Stops what the demo started (containers, HAProxy); the shared data stays.
demo-stop:
	@$(BIN)/deliverypipeline local down

# The same release to the swarm target: a local swarm of 3 nodes (network namespaces, each with its
# own engine: `deliverypipeline swarm up`, left up between runs), its edge HAProxy on 127.0.0.1:8180
# (prod) and :8181 (preprod). `make fleet-stop` removes the swarm, the edge and the lab's network.
FLEET_EDGE := --prod-address 127.0.0.1:8180 --preprod-address 127.0.0.1:8181
fleet-demo: setup
	@$(BIN)/deliverypipeline swarm status >/dev/null 2>&1 || $(BIN)/deliverypipeline swarm up --nodes 3
	$(BIN)/deliverypipeline run --repo . --ref HEAD --target swarm $(FLEET_EDGE)
	@$(BIN)/deliverypipeline swarm status $(FLEET_EDGE)
	@eval "$$($(BIN)/deliverypipeline server env)"; \
	  echo "prod: http://127.0.0.1:8180/   preprod: http://127.0.0.1:8181/   Prefect UI: $$PREFECT_UI_URL/"

fleet-stop:
	@$(BIN)/deliverypipeline swarm down

# The control plane: what runs (status), and stopping it (its running flow runs, the worker, the server).
status: venv
	@$(BIN)/deliverypipeline server status

stop: venv
	@$(BIN)/deliverypipeline server stop

# The webhook receiver on 127.0.0.1:8787, added to the control plane (started if missing); Ctrl-C
# stops the receiver and whatever of the control plane this `make serve` started. Needs
# DELIVERY_WEBHOOK_SECRET.
serve: venv
	@bash scripts/serve.sh
