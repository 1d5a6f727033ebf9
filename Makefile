# The OMS: `make run` starts everything locally, `make test` runs lint and every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install lock run test lint unit component integration infra-up infra-down migrate clean help jaeger asyncapi
.PHONY: stripe-mock
.PHONY: bench chaos bench-orders

help:
	@echo "make run        - start Kafka, Postgres and the five services (Ctrl-C stops the services)"
	@echo "make test       - install, lint, and run unit, component and integration tests"
	@echo "make install    - install exactly uv.lock into .venv"
	@echo "make lock       - refresh uv.lock on purpose (LOCK_ARGS=\"--upgrade-package NAME\" for one)"
	@echo "make infra-up   - start local Kafka and Postgres, create topics, migrate"
	@echo "make infra-down - stop what infra-up started (data kept)"
	@echo "make migrate    - apply pending migrations"
	@echo "make clean      - stop and delete local data (downloaded jars kept)"
	@echo "make asyncapi   - regenerate docs/asyncapi/*.json from the code (a test checks them)"
	@echo "make jaeger     - build Jaeger v2 from the Go module proxy into .local/jaeger (cached)"
	@echo "make stripe-mock - build stripe-mock from the Go module proxy into .local/stripe-mock (cached)"
	@echo "make chaos      - the bench under failure: kills, Kafka and Postgres crashes, invariants"
	@echo "make bench-orders - GET /v1/orders over 100,000 orders, p50/p95 per query (BENCH_ORDERS_ARGS)"
	@echo "make bench      - end-to-end benchmark (BENCH_ORDERS, BENCH_RATE, BENCH_REPLICAS, BENCH_INGRESS; see bench/run.py)"

# uv installs exactly uv.lock (hashes checked; --locked refuses a lock that disagrees with
# pyproject.toml). uv itself comes from PyPI pinned by hash, into .tools/.
TOOLS := .tools
UV := $(TOOLS)/bin/uv
export UV_PYTHON_DOWNLOADS := never

$(UV): deploy/uv-requirements.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --require-hashes --no-deps -r deploy/uv-requirements.txt
	@touch $(UV)

$(INSTALLED): pyproject.toml uv.lock $(UV)
	@command -v java >/dev/null || { echo "Java 17+ is needed to run Kafka"; exit 1; }
	$(UV) sync --quiet --locked --python $(PYTHON)
	@touch $(INSTALLED)

install: $(INSTALLED)

# Refresh the lock on purpose (newest versions within pyproject's ranges); commit uv.lock after
# `make test` passes. One package: make lock LOCK_ARGS="--upgrade-package fastapi".
lock: $(UV)
	$(UV) lock --python $(PYTHON) $(or $(LOCK_ARGS),--upgrade)

run: install
	$(BIN)/oms run

infra-up: install
	$(BIN)/oms infra up

infra-down:
	@if [ -x $(BIN)/oms ]; then $(BIN)/oms infra down; fi

migrate: install
	$(BIN)/oms migrate

# lint-imports: the architecture rules in pyproject.toml ([tool.importlinter]).
lint: install
	$(BIN)/ruff check shared services devtools tests bench
	$(BIN)/mypy shared services devtools bench
	$(BIN)/lint-imports --no-cache

unit: install
	$(BIN)/pytest tests/unit

component: install
	$(BIN)/pytest tests/component

integration: install
	$(BIN)/pytest tests/integration

# pytest-xdist: the test files spread over TEST_WORKERS processes (a file's tests stay together,
# so a module's running system is started once); the controller brings Kafka and Postgres up
# once for all of them (tests/conftest.py). TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2

# stripe-mock (the Stripe gateway's tests) is built first where Go is: about 35 s on a fresh
# machine, cached after. Without Go, or if the build fails, those tests skip and say why.
# Debian's Chromium (the console's browser tests, tests/browser) is installed where it is not
# (needs root and apt); if that fails, those tests skip and say why.
test: install lint
	@if command -v go >/dev/null 2>&1; then \
		$(BIN)/python -m devtools.stripe_mock build >/dev/null \
		|| echo "stripe-mock did not build (.local/logs/stripe-mock-build.log): its tests skip"; \
	else echo "Go is not on PATH: the stripe-mock tests skip"; fi
	@command -v chromium >/dev/null 2>&1 \
		|| (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		|| echo "Chromium did not install (apt-get, as root): the browser tests skip"
	$(BIN)/pytest tests -n $(TEST_WORKERS) --dist loadfile

asyncapi: install
	$(BIN)/python -m shared.ops.asyncapi --write

jaeger: install
	$(BIN)/python -m devtools.jaeger build

stripe-mock: install
	$(BIN)/python -m devtools.stripe_mock build

# Not part of `make test`: a run takes minutes and loads the whole machine. Options come from
# BENCH_* variables (`make bench BENCH_ORDERS=10000 BENCH_RATE=200`) or BENCH_ARGS.
bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# How fast the orders list answers over 100,000 orders (bench/orders_list.py): a fresh database,
# order-intake as a process, p50/p95 per query. E.g. BENCH_ORDERS_ARGS="--explain --json x.json".
bench-orders: install
	$(BIN)/python -m bench.orders_list $(BENCH_ORDERS_ARGS)

# The bench under failure (bench/chaos.py): services SIGKILLed every few seconds and restarted,
# Kafka and Postgres crashed once each, then the invariants checked. CHAOS_ARGS adds options.
chaos: install
	$(BIN)/python -m bench.run --chaos --orders $(or $(CHAOS_ORDERS),10000) $(CHAOS_ARGS)

clean:
	@if [ -x $(BIN)/oms ]; then $(BIN)/oms infra clean; fi
	rm -rf .pytest_cache .mypy_cache .ruff_cache
