# The OMS: `make run` starts everything locally, `make test` runs lint and every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install run test lint unit component integration infra-up infra-down migrate clean help jaeger

help:
	@echo "make run        - start Kafka, Postgres and the five services (Ctrl-C stops the services)"
	@echo "make test       - install, lint, and run unit, component and integration tests"
	@echo "make infra-up   - start local Kafka and Postgres, create topics, migrate"
	@echo "make infra-down - stop what infra-up started (data kept)"
	@echo "make migrate    - apply pending migrations"
	@echo "make clean      - stop and delete local data (downloaded jars kept)"
	@echo "make jaeger     - build Jaeger v2 from the Go module proxy into .local/jaeger (cached)"

$(INSTALLED): pyproject.toml
	@command -v java >/dev/null || { echo "Java 17+ is needed to run Kafka"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(INSTALLED)

install: $(INSTALLED)

run: install
	$(BIN)/oms run

infra-up: install
	$(BIN)/oms infra up

infra-down:
	@if [ -x $(BIN)/oms ]; then $(BIN)/oms infra down; fi

migrate: install
	$(BIN)/oms migrate

lint: install
	$(BIN)/ruff check shared services tests
	$(BIN)/mypy shared services

unit: install
	$(BIN)/pytest tests/unit

component: install
	$(BIN)/pytest tests/component

integration: install
	$(BIN)/pytest tests/integration

test: install lint
	$(BIN)/pytest tests

jaeger: install
	$(BIN)/python -m shared.ops.jaeger build

clean:
	@if [ -x $(BIN)/oms ]; then $(BIN)/oms infra clean; fi
	rm -rf .pytest_cache .mypy_cache .ruff_cache
