# The README's two commands: `make run` (set up, migrate, seed the demo, serve) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint types bench sim check chromium axe nginx redis-server clean

run: $(VENV)/.installed
	$(BIN)/tessera migrate
	$(BIN)/tessera demo
	$(BIN)/tessera serve

# Three workers on two cores: most of a test's time is the app's start and the databases' reset,
# partly spent waiting on PostgreSQL, sockets and child processes.
test: $(VENV)/.installed-test chromium axe nginx redis-server
	$(BIN)/pytest -n 3 --dist loadgroup --durations=40

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(VENV)/.installed-test
	$(BIN)/mypy --strict protocol ticket_renderer scanner_client/core.py scanner_client/store.py scanner_client/decide.py scanner_client/counters.py scanner_client/events.py

bench: $(VENV)/.installed-test
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# The door simulation (docs/simulation.md): `make sim` runs SEEDS seeds from FIRST with a progress
# line; `make sim SEED=n` replays one seed step for step (and shrinks it if it fails).
SEEDS ?= 1000
FIRST ?= 1
sim: $(VENV)/.installed-test
	$(BIN)/python -m tests.simulation $(if $(SEED),$(SEED),$(FIRST) --seeds $(SEEDS)$(if $(JOBS), --jobs $(JOBS)))

check: lint test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[test]'
	@touch $@ $(VENV)/.installed

# Browser tests drive Debian's Chromium through Playwright; nothing downloads a browser.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# The deployment test runs the compose topology from plain processes behind Debian's nginx.
nginx:
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nginx >/dev/null; }

# The Redis-restart fault test runs a private redis-server of its own (never the machine's Redis).
redis-server:
	@command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || { \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq redis-server >/dev/null; }

# axe-core for the console's accessibility checks in the browser tests, from the npm registry into
# build/ (test-only: no page ever loads it).
AXE := build/axe/node_modules/axe-core/axe.min.js
axe: $(AXE)
$(AXE):
	npm install --no-audit --no-fund --silent --prefix build/axe axe-core@4.14.1

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
