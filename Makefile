# Two commands for a fresh machine: `make run` (install + serve) and `make test` (install + test).
# Each sets up what it needs: the virtualenv, pinned dependencies, the embedded model, npm test servers.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check

SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-quick bench model install install-dev chromium bubblewrap clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime-installed: requirements.txt | $(PY)
	$(PIP) -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(PY)
	$(PIP) -r requirements-dev.txt
	touch $@ $(VENV)/.runtime-installed

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.runtime-installed bubblewrap
install-dev: $(VENV)/.dev-installed node_modules/.installed chromium bubblewrap

# Headless Chromium renders /docs in the test suite (Debian's package).
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium)

# The developer extension's shell runs in a bubblewrap sandbox (Debian's package; developer_sandbox: auto).
bubblewrap:
	@command -v bwrap >/dev/null 2>&1 || \
		($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq bubblewrap)

model: $(VENV)/.runtime-installed
	$(PY) scripts/fetch_model.py

run: install model
	$(VENV)/bin/gunicorn app:app -c gunicorn.conf.py

test: install-dev model
	$(PY) -m pytest

test-quick: install-dev
	$(PY) -m pytest -m "not local_model"

bench: install-dev model
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) node_modules models
