# Two commands do everything on a fresh clone:
#   make demo   the whole pipeline on the embedded default (LocalExecutor + SQLite Airflow, SQLite MLflow)
#   make test   lint + the test suite
# Both create .venv and install what they need (requirements.txt pinned, constraints.txt for the rest).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
PYTEST_ARGS ?=

.PHONY: demo test lint install airflow mlflow summary constraints clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP): requirements.txt constraints.txt | $(PY)
	$(PIP) install -q -r requirements.txt -c constraints.txt
	touch $@

$(DEV_STAMP): requirements-dev.txt $(STAMP)
	$(PIP) install -q -r requirements-dev.txt -c constraints.txt
	touch $@

install: $(STAMP)

demo: $(STAMP)
	PYTHONPATH=plugins $(PY) -m llmops.cli demo

summary: $(STAMP)
	PYTHONPATH=plugins $(PY) -m llmops.cli summary

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

# The web UI on http://localhost:8080 over the demo's Airflow home (the admin password is printed at start).
airflow: $(STAMP)
	eval "$$(PYTHONPATH=plugins $(PY) -m llmops.cli env)" && PATH=$(CURDIR)/$(VENV)/bin:$$PATH airflow standalone

# The MLflow UI on http://localhost:5000 over the demo's tracking store and registry.
mlflow: $(STAMP)
	eval "$$(PYTHONPATH=plugins $(PY) -m llmops.cli env)" && $(VENV)/bin/mlflow ui --backend-store-uri "$$MLFLOW_TRACKING_URI" --port 5000

constraints: $(STAMP)
	(echo "# Everything else pinned, from a working environment (python -m pip freeze). Regenerate with: make constraints"; \
	 $(PIP) freeze --exclude-editable | grep -v -E "^(torch|pytest|ruff|iniconfig|pluggy)==" | sed 's/+cpu//') > constraints.txt

clean:
	rm -rf .airflow .llmops
