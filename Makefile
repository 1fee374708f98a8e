# The two commands: `make run` brings everything up, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi
PYTEST_ARGS ?=

.PHONY: run stop test bench clean translations

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(BIN)/activate
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/activate
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

## Compile the interface's translations (dashboard/translations/*/LC_MESSAGES/messages.po -> .mo).
translations: $(VENV)/.runtime
	@if ls dashboard/translations/*/LC_MESSAGES/messages.po >/dev/null 2>&1; then \
	  $(BIN)/pybabel compile -d dashboard/translations; fi

## Set up and run web, worker, scheduler, embedded Redis and demo traffic (Ctrl-C stops all).
run: $(VENV)/.runtime translations
	$(BIN)/python -m dashboard.secret_key
	$(BIN)/flask db upgrade
	$(BIN)/flask seed-demo --if-empty
	DEMO_TRAFFIC=$${DEMO_TRAFFIC:-1} SYNC_INTERVAL_SECONDS=$${SYNC_INTERVAL_SECONDS:-20} \
	  RETRY_DELAY_SCALE=$${RETRY_DELAY_SCALE:-0.02} DEMO_FAKES=$${DEMO_FAKES:-1} \
	  ALLOW_PRIVATE_OUTBOUND_URLS=$${ALLOW_PRIVATE_OUTBOUND_URLS:-1} \
	  TRIPLETEX_CONSUMER_TOKEN=$${TRIPLETEX_CONSUMER_TOKEN:-fake-consumer-token} $(BIN)/flask run-all

## Stop the stack that `make run` started (also one running in the background), and wait until it has.
stop:
	$(BIN)/flask run-all --stop

## Run the whole test suite (SQLite and embedded Redis unless TEST_DATABASE_URL / TEST_REDIS_URL are set).
test: $(VENV)/.dev translations
	$(BIN)/python -m pytest $(PYTEST_ARGS); status=$$?; if [ $$status -eq 5 ]; then echo "no tests selected"; exit 0; fi; exit $$status

## Run every benchmark in tests/perf and print `name: value` lines.
bench: $(VENV)/.dev translations
	@for script in tests/perf/bench_*.py; do echo "# $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) instance
