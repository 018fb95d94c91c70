# The two commands: `make run` and `make test`. Everything else is set up on the way.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
export FLASK_APP := app
ARGS ?=

.PHONY: run test bench venv db-upgrade clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

db-upgrade: venv
	$(VENV)/bin/flask db upgrade

run: venv db-upgrade
	$(PY) -m app.devserver

test: venv
	$(PY) -m pytest $(ARGS)

bench: venv
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache
