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

.PHONY: demo test lint install airflow mlflow serve summary constraints clean browser

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP): requirements.txt requirements-gcp.txt constraints.txt | $(PY)
	$(PIP) install -q -r requirements.txt -c constraints.txt
	$(PIP) install -q --no-deps apache-airflow-providers-google==22.8.0
	$(PIP) install -q -r requirements-gcp.txt -c constraints.txt
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

test: lint browser
	$(PY) -m pytest $(PYTEST_ARGS)

# The web UI test (tests/integration/test_web_ui_browser.py) drives Debian's chromium. Installed here when missing
# and we are root with apt-get (CI); otherwise says why that test will skip. Idempotent.
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium for the web UI test (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
	  || echo "note: apt-get install chromium failed: the web UI browser test will skip"; \
	else echo "note: /usr/bin/chromium is missing (not root with apt-get): the web UI browser test will skip"; fi

# The web UI on http://localhost:8080 over the demo's Airflow home (the admin password is printed at start).
airflow: $(STAMP)
	eval "$$(PYTHONPATH=plugins $(PY) -m llmops.cli env)" && PATH=$(CURDIR)/$(VENV)/bin:$$PATH airflow db migrate >/dev/null \
	  && PYTHONPATH=plugins $(PY) -m llmops.cli gpu-pool && PATH=$(CURDIR)/$(VENV)/bin:$$PATH airflow standalone

# The REST API over the registered champion, on http://127.0.0.1:8000 (after make demo).
serve: $(STAMP)
	eval "$$(PYTHONPATH=plugins $(PY) -m llmops.cli env)" && $(PY) -m llmops.serving --use-case stackoverflow_qa --port 8000

# The MLflow UI on http://localhost:5000 over the demo's tracking store and registry.
mlflow: $(STAMP)
	eval "$$(PYTHONPATH=plugins $(PY) -m llmops.cli env)" && $(VENV)/bin/mlflow ui --backend-store-uri "$$MLFLOW_TRACKING_URI" --port 5000

constraints: $(STAMP)
	(echo "# Everything else pinned, from a working environment (python -m pip freeze). Regenerate with: make constraints"; \
	 $(PIP) freeze --exclude-editable | grep -v -E "^(torch|pytest|ruff|iniconfig|pluggy)==" | sed 's/+cpu//') > constraints.txt

clean:
	rm -rf .airflow .llmops
