# Vigil: `make demo` to see it work, `make test` to check it. Both set everything up.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export VIGIL_RUN_DIR ?= $(CURDIR)/.run
# The prediction logger's and the feedback service's de-duplication keys have their own Redis
# (deploy/redis.sh: 6380).
export VIGIL_IDEMPOTENCY_REDIS_URL ?= redis://127.0.0.1:6380/0
VENV := .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)

.PHONY: help install up-infra up down status topics lint test test-unit test-integration test-e2e demo bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

$(UV):
	python3 -m pip install --quiet --user uv || python3 -m pip install --quiet --break-system-packages --user uv

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python 3.11
	@touch $@

install: $(VENV)/.synced ## install Python dependencies (uv, from uv.lock) and the system packages
	@command -v java >/dev/null && command -v mvn >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless maven >/dev/null; }
	@command -v redis-server >/dev/null && command -v curl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server curl >/dev/null; }
	@# promtool for `make lint`; prometheus for tests/integration/test_prometheus.py (its own, on a free port).
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

up-infra: install ## start Kafka and Redis and create the topics
	deploy/kafka.sh start
	deploy/redis.sh start
	$(PY) -m vigil.adapters.bus

topics: install ## create the topics of the catalogue in libs/vigil/topics.py
	$(PY) -m vigil.adapters.bus

up: up-infra ## start Kafka, Redis and every Vigil service in the background
	deploy/services.sh start

down: ## stop what `make up` started
	-deploy/services.sh stop
	-deploy/redis.sh stop
	-deploy/kafka.sh stop

status: ## show what runs
	@deploy/kafka.sh status; deploy/redis.sh status; deploy/services.sh status

lint: install ## ruff, mypy (strict on libs/ and services/) and the layering contract (import-linter)
	$(VENV)/bin/ruff check libs services tests benchmarks deploy
	$(VENV)/bin/ruff format --check libs services tests benchmarks deploy
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache
	promtool check config deploy/prometheus/prometheus.yml
	promtool check rules deploy/prometheus/vigil.rules.yml
	promtool test rules deploy/prometheus/vigil.rules.test.yml

test-unit: install ## unit tests (no I/O)
	$(VENV)/bin/pytest tests/unit -q

test: lint up-infra ## everything: lint, unit, integration and end-to-end tests against real Kafka and Redis
	$(VENV)/bin/pytest tests -q -ra

demo: up ## start the stack, register a model, send normal then drifted traffic, print the alerts
	$(PY) deploy/demo.py

bench: up-infra ## performance measurements against the local Kafka and Redis; they print their figures
	$(UV) sync --frozen --python 3.11 --group bench
	$(PY) -m benchmarks.codec
	$(PY) -m benchmarks.profiles
	$(PY) -m benchmarks.batchdecode
	$(PY) -m benchmarks.sdk
	$(PY) -m benchmarks.ingest
	$(PY) -m benchmarks.feedback_ingest
	$(PY) -m benchmarks.archive
	$(PY) -m benchmarks.joiner
	$(PY) -m benchmarks.drift_quality
	$(PY) -m benchmarks.evidently
	$(PY) -m benchmarks.cbpe
	$(PY) -m benchmarks.drift
	$(PY) -m benchmarks.drift_consume
	$(PY) -m benchmarks.alerting
	$(PY) -m benchmarks.registry_views
	$(PY) -m benchmarks.console_pages

clean: down ## stop everything and delete the run directory (Kafka data, logs)
	rm -rf $(VIGIL_RUN_DIR)
