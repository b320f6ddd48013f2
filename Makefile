# Knockout: `make run` starts the demo event, `make test` runs the whole test suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test bench stop browser postgres deploy-tools wrk

run: $(VENV)/.runtime  ## set up everything and start the demo event (web, worker, Redis)
	$(BIN)/flask --app quiz demo

test: $(VENV)/.dev browser postgres deploy-tools  ## run the whole test suite: on SQLite and, alongside, on PostgreSQL
	bin/test

bench: $(VENV)/.dev postgres wrk  ## measure on SQLite and PostgreSQL, one table (BENCH_ARGS=--quick: a short run)
	bin/with-postgres $(BIN)/python -m bench $(BENCH_ARGS)

stop:  ## stop the embedded Redis left by `flask` commands run by hand
	$(BIN)/python -c "from pathlib import Path; from quiz.config import INSTANCE; from quiz.embedded import stop_redis; stop_redis(INSTANCE)"

$(VENV)/.runtime: requirements.txt
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser).
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium fonts-liberation fonts-noto-color-emoji; }

# wrk makes the benchmark's HTTP load (C: the load generator must not be what limits it).
wrk:
	@command -v wrk >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk; }

# A PostgreSQL server for the second pass of the suite (bin/with-postgres starts a throwaway one).
postgres:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq postgresql; }

# For tests/test_deploy.py: Debian's nginx runs deploy/nginx.conf in front of the live stack, and
# docker-compose (no engine needed) checks deploy/compose.yaml with `config`.
deploy-tools:
	@{ command -v nginx || [ -x /usr/sbin/nginx ]; } >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nginx; }
	@command -v docker-compose >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends docker-compose; }
