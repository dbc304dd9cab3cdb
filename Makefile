# Every target sets up .venv first when needed (fresh clone, or requirements.lock changed).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATASETS_DIR ?= datasets
ARCHIVES ?=
STUDY ?= quick
# pytest-xdist workers for `make test` (tests sharing a module fixture stay on one); 0: one process
TEST_WORKERS ?= 2
PYTEST_ARGS ?=   # e.g. PYTEST_ARGS="--durations=40" or "-k slurm"
SWEEP ?= $(lastword $(sort $(wildcard outputs/sweeps/*)))

# one `make data-<format>` per native format in src/data/formats/ (data-coco, data-visdrone, ...)
DATA_TARGETS := $(patsubst src/data/formats/%.py,data-%,$(filter-out %/__init__.py,$(wildcard src/data/formats/*.py)))

.PHONY: help venv run dry-run study aggregate sync bench test lint clean gpu-wheels gpu-check slurm-up slurm-down $(DATA_TARGETS)

help:
	@echo "make run        default ablation (attn=none,cot,ema on the embedded dataset) + table"
	@echo "make test       lint, then the test suite (the slurm tests run when a cluster answers: make slurm-up first)"
	@echo "make lint       ruff (lint + format check) and the import-linter layer contracts (pyproject.toml)"
	@echo "make slurm-up / slurm-down   a one-node SLURM cluster on this machine (root; config under outputs/slurm)"
	@echo "make dry-run    cost table (params, GFLOPs) of every attention x position, no training"
	@echo "make data-coco / data-visdrone   download (or ARCHIVES=DIR: convert) a real dataset"
	@echo "make study STUDY=quick   a ready-made study from conf/experiment/ (= experiments/): $$(ls conf/experiment | sed "s/.yaml//" | tr "\n" " ")"
	@echo "make sync       upload a sweep's offline W&B runs: make sync SWEEP=outputs/sweeps/<dir>"
	@echo "make bench      performance benchmarks -> outputs/bench/BENCH.md, bench.json (~16 min; --only load for the 200-job sweep)"
	@echo "make aggregate  rebuild the table of a sweep: make aggregate SWEEP=outputs/sweeps/<dir>"
	@echo "make gpu-wheels our non-torch packages as Python 3.12 wheels in .whl/, for a GPU box without them"
	@echo "make gpu-check  on a CUDA machine: train 4 variants briefly, fp16/fp32 mAP + latency -> outputs/gpu-check/REPORT.md"

# The .venv takes ~6.5 GB (torch's CUDA build and its nvidia-* libraries) and, where pip downloads the
# wheels, ~3.5 GB more while installing. --no-cache-dir: no third copy in ~/.cache/pip. Too little free
# space is named in a warning before pip starts, so a later "Errno 28" comes with what to free.
VENV_NEEDS_GB ?= 10
$(STAMP): requirements.lock
	@test -x $(PY) || { free=$$(df -Pk . | awk 'NR==2 {print int($$4 / 1048576)}'); \
	  [ "$$free" -ge $(VENV_NEEDS_GB) ] || echo "[venv] warning: $$free GB free here; a new $(VENV) needs about $(VENV_NEEDS_GB) GB while pip installs (df -h .)"; \
	  $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --no-cache-dir --upgrade pip==25.2
	$(PY) -m pip install --quiet --no-cache-dir -r requirements.lock
	@touch $(STAMP)

venv: $(STAMP)

run: venv
	$(PY) -m src.run -m attn=none,cot,ema

dry-run: venv
	$(PY) -m src.run -m 'attn=glob(*)' 'pos=glob(*)' dry_run=true

study: venv
	@test -f conf/experiment/$(STUDY).yaml || { echo "no study '$(STUDY)'; choices: $$(ls conf/experiment | sed 's/.yaml//' | tr '\n' ' ')"; exit 2; }
	$(PY) -m src.run -m experiment=$(STUDY)

aggregate: venv
	@test -n "$(SWEEP)" || { echo "no sweep found under outputs/sweeps; pass SWEEP=DIR"; exit 2; }
	$(PY) -m src.aggregate $(SWEEP)

sync: venv
	@test -n "$(SWEEP)" || { echo "no sweep found under outputs/sweeps; pass SWEEP=DIR"; exit 2; }
	$(PY) -m src.tracking sync $(SWEEP)

bench: venv
	$(PY) -m src.bench

test: lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/lint-imports

slurm-up:
	.ci/slurm-cluster up

slurm-down:
	.ci/slurm-cluster down

$(DATA_TARGETS): data-%: venv
	DATASETS_DIR=$(DATASETS_DIR) $(PY) -m src.data.fetch $* $(if $(ARCHIVES),--archives $(ARCHIVES))

GPU_PY ?= $(if $(wildcard $(PY)),$(PY),python3)   # on a GPU box without .venv: its own python3 (torch + CUDA)

gpu-wheels: venv
	rm -rf .whl && mkdir -p .whl
	$(PY) -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	    -d .whl -r requirements-wheels.txt
	$(PY) -m pip wheel --no-deps -w .whl $$(grep '^antlr4-python3-runtime==' requirements.lock)  # sdist only on PyPI; pure Python

gpu-check:
	@if [ -d .whl ] && ! $(GPU_PY) -c "import ultralytics, hydra" 2>/dev/null; then \
	    $(GPU_PY) -m pip install --quiet --no-index --no-deps .whl/*.whl; fi
	$(GPU_PY) -m src.bench.gpu_check

clean:
	rm -rf outputs/sweeps outputs/runs outputs/cache
