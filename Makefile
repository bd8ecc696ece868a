# Thin targets over Python entry points. `make` alone lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --warn-undefined-variables --no-builtin-rules

PYTHON ?= python3
PYTEST_ARGS ?=
PROCESSES ?=
# Instances of each service and of the worker under make run (server/devstack/instances.py).
SCALE ?= 1
ORDER ?=
LOGS ?=
FAULTS_ARGS ?=
BENCH_ARGS ?=
ROLE ?= operator
CUSTOMER ?=
VENV := .venv
BIN := $(VENV)/bin
# Recreated whenever a pyproject.toml changes, so the venv follows the dependencies.
INSTALLED := $(VENV)/.installed
# The Node.js client's packages (npm ci), installed when npm is on the machine;
# without them its test skips.
NODE_CLIENT := $(if $(shell command -v npm),clients/node/node_modules/.installed)

# temporal, buf, grpcurl and honcho come from the venv.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help venv run certs token trace test bench profile faults proto proto-check proto-release lint lint-protos lint-deploy clean-data

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-12s %s\n", $$1, $$2}'

venv: $(INSTALLED) $(NODE_CLIENT) ## Create .venv and install the project with its dev tools

# The client (clients/pyproject.toml) and the platform in one pip command, so
# that the platform's order-platform-client is the one in clients/. The
# platform goes out first: pip installs the client before it replaces the
# platform, and uninstalling a platform from before clients/ had its own
# pyproject.toml would delete `orders`, the client's program now.
$(INSTALLED): pyproject.toml clients/pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "$(PYTHON) is older than Python 3.11; try make PYTHON=python3.11 ..." >&2; exit 1; }
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip uninstall --quiet --yes order-platform 2>/dev/null
	$(BIN)/python -m pip install --quiet -e "./clients[cli]" -e ".[dev]"
	touch $@

clients/node/node_modules/.installed: clients/node/package-lock.json
	cd clients/node && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

# PROCESSES="temporal postgres" starts only those Procfile entries; SCALE=2 two of each.
run: $(INSTALLED) ## Start the whole stack (Ctrl-C stops it; state stays in .data/; SCALE=2: two of each)
	$(BIN)/python -m server.devstack --scale $(SCALE) $(PROCESSES)

# `make run` makes them itself when TLS_MODE is tls or mtls; this makes (or renews) them now.
certs: $(INSTALLED) ## Make a development CA and a certificate per process in .data/tls/
	$(BIN)/python -m server.devstack.certs

# ROLE: customer-service (with CUSTOMER=...), operator, worker or front-door.
token: $(INSTALLED) ## Print a development token (ROLE=customer-service CUSTOMER=cust-42)
	@$(BIN)/python -m server.devstack.credentials token --role $(ROLE) $(if $(CUSTOMER),--customer-id $(CUSTOMER))

# ORDER is an order id (or a trace id); the spans come from .data/traces.jsonl.
trace: $(INSTALLED) ## Print an order's traces with durations (ORDER=ord_...; LOGS=1 adds its log lines)
	@[ -n "$(ORDER)" ] || { echo "usage: make trace ORDER=ord_..." >&2; exit 2; }
	$(BIN)/python -m server.devstack.traces $(ORDER) $(if $(LOGS),--logs)

# pytest's exit code 5 (no tests collected) fails the target like any other.
test: $(INSTALLED) $(NODE_CLIENT) ## Run the tests (options in PYTEST_ARGS, e.g. PYTEST_ARGS="-x -k orders")
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Starts its own Temporal, database and platform; BENCH_ARGS="--help" lists the flags.
bench: $(INSTALLED) ## Measure the platform against bare baselines (flags in BENCH_ARGS; see docs/performance.md)
	$(BIN)/python -m bench $(BENCH_ARGS)

profile: $(INSTALLED) ## make bench, with py-spy profiles of the worker and the front door
	$(BIN)/python -m bench --profile $(BENCH_ARGS)

# Its own Temporal, Postgres and processes; python -m tests.faults --help lists the flags.
faults: $(INSTALLED) ## Every fault with 200 orders in flight, then audit (FAULTS_ARGS="--faults worker")
	$(BIN)/python -m tests.faults $(FAULTS_ARGS)

proto: $(INSTALLED) ## Regenerate clients/proto from protos/
	$(BIN)/python protos/generate.py

proto-check: $(INSTALLED) ## Fail if clients/proto is stale
	$(BIN)/python protos/generate.py --check

lint: $(INSTALLED) lint-protos lint-deploy ## ruff, ruff format --check, mypy, buf lint and the deployment files
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy server worker clients bench

# protos/released.tar.gz holds the contracts as last released: a change that
# breaks their callers fails here (docs/contracts.md).
lint-protos: $(INSTALLED) ## buf lint of the contracts, and buf breaking against the last release
	cd protos && buf lint
	cd protos && buf breaking --against released.tar.gz

proto-release: $(INSTALLED) ## Record protos/ as released (at release time only): the new base of buf breaking
	cd protos && find . -name '*.proto' | sort | tar --create --no-recursion --files-from=- \
		--mtime=@0 --owner=0 --group=0 --numeric-owner buf.yaml | gzip -n > released.tar.gz

# Offline: kubernetes-validate ships the schemas of each Kubernetes version.
# The kustomization itself is not a Kubernetes resource and has no schema.
KUBERNETES_VERSION := 1.30.0
lint-deploy: $(INSTALLED) ## hadolint of the image file, kubernetes-validate of the manifests
	hadolint deploy/Dockerfile
	kubernetes-validate --strict --quiet --kubernetes-version $(KUBERNETES_VERSION) \
		$(filter-out %/kustomization.yaml,$(wildcard deploy/kubernetes/*.yaml))

clean-data: ## Delete .data/, the Postgres and Temporal state of make run
	rm -rf .data
