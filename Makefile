# The two commands: `make run` and `make test`. Everything else is set up on the way.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
export FLASK_APP := app
ARGS ?=

.PHONY: run test bench venv db-upgrade clean translations messages

venv: $(VENV)/.installed translations

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

# Translations: the .po catalogs are committed, the compiled .mo files are built here (git-ignored).
PO_FILES := $(wildcard app/translations/*/LC_MESSAGES/messages.po)
translations: $(PO_FILES:.po=.mo)

app/translations/%/LC_MESSAGES/messages.mo: app/translations/%/LC_MESSAGES/messages.po | $(VENV)/.installed
	$(VENV)/bin/pybabel compile --statistics -l $* -i $< -o $@

# After changing user-facing text: extract it again and merge it into each language's catalog, then
# translate the new entries (tests/test_i18n.py fails while any is missing or fuzzy).
BABEL_KEYWORDS := -k _l -k lazy_gettext -k PN_:1,2
messages: $(VENV)/.installed
	$(VENV)/bin/pybabel extract -F app/translations/babel.cfg $(BABEL_KEYWORDS) --no-location --sort-output \
		--omit-header -o app/translations/messages.pot .
	$(VENV)/bin/pybabel update -i app/translations/messages.pot -d app/translations --no-wrap \
		--ignore-obsolete

db-upgrade: venv translations
	$(VENV)/bin/flask db upgrade

run: venv translations db-upgrade
	$(PY) -m app.devserver

test: venv translations
	$(PY) -m pytest $(ARGS)

bench: venv
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache
