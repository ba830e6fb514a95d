# Two commands for a fresh machine: `make run` (install + serve) and `make test` (install + test).
# Each sets up what it needs: the virtualenv, pinned dependencies, the project itself (editable, so
# .venv/bin/goose-api exists), the embedded model, and for the tests the npm test servers.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check
# requirements*.txt are generated from pyproject.toml (`make requirements`); never edit them by hand.
COMPILE := CUSTOM_COMPILE_COMMAND="make requirements" $(VENV)/bin/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links \
	--no-emit-trusted-host --extra local

SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-quick bench model install install-dev chromium bubblewrap services requirements clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime-installed: requirements.txt pyproject.toml | $(PY)
	$(PIP) -r requirements.txt
	$(PIP) --no-deps -e .
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt pyproject.toml | $(PY)
	$(PIP) -r requirements-dev.txt
	$(PIP) --no-deps -e .
	touch $@ $(VENV)/.runtime-installed

tests/node_modules/.installed: tests/package.json tests/package-lock.json
	cd tests && npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.runtime-installed bubblewrap
install-dev: $(VENV)/.dev-installed tests/node_modules/.installed chromium bubblewrap services

# Headless Chromium renders /docs in the test suite (Debian's package).
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium)

# The developer extension's shell runs in a bubblewrap sandbox (Debian's package; developer_sandbox: auto).
bubblewrap:
	@command -v bwrap >/dev/null 2>&1 || \
		($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq bubblewrap)

# The suite starts throwaway PostgreSQL and Redis servers of its own (tests/support/services.py; Debian's packages),
# unless DATABASE_URL / REDIS_URL name servers to use.
services:
	@(ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v redis-server >/dev/null 2>&1) || \
		($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql redis-server)

model: $(VENV)/.runtime-installed
	$(PY) scripts/fetch_model.py

run: install model
	$(PY) -m gunicorn app:app -c gunicorn.conf.py

test: install-dev model
	$(PY) -m pytest

# The fast part (docs/development.md): no gunicorn, npm server, browser, long scenario or local model.
test-quick: install-dev
	$(PY) -m pytest -m "not live and not npm and not browser and not slow and not local_model"

bench: install-dev model
	$(PY) bench/run_all.py

# Regenerate the pins after editing pyproject.toml's dependencies (pip-tools; keeps existing pins).
requirements: $(VENV)/.dev-installed
	$(COMPILE) -o requirements.txt pyproject.toml
	$(COMPILE) --extra dev -c requirements.txt -o requirements-dev.txt pyproject.toml

clean:
	rm -rf $(VENV) tests/node_modules models
