# Every target sets up .venv first when needed (fresh clone, or requirements.lock changed).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATASETS_DIR ?= datasets
ARCHIVES ?=
STUDY ?= quick
SWEEP ?= $(lastword $(sort $(wildcard outputs/sweeps/*)))

.PHONY: help venv run dry-run study aggregate sync bench test clean data-coco data-visdrone

help:
	@echo "make run        default ablation (attn=none,cot,ema on the embedded dataset) + table"
	@echo "make test       the test suite"
	@echo "make dry-run    cost table (params, GFLOPs) of every attention x position, no training"
	@echo "make data-coco / data-visdrone   download (or ARCHIVES=DIR: convert) a real dataset"
	@echo "make study STUDY=quick   a ready-made study from experiments/ (quick, visdrone_attention, coco_attention)"
	@echo "make sync       upload a sweep's offline W&B runs: make sync SWEEP=outputs/sweeps/<dir>"
	@echo "make bench      performance benchmarks -> outputs/bench/BENCH.md, bench.json (~8 min)"
	@echo "make aggregate  rebuild the table of a sweep: make aggregate SWEEP=outputs/sweeps/<dir>"

$(STAMP): requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.2
	$(PY) -m pip install --quiet -r requirements.lock
	@touch $(STAMP)

venv: $(STAMP)

run: venv
	$(PY) -m src.run -m attn=none,cot,ema

dry-run: venv
	$(PY) -m src.run -m attn=none,cot,cot_lite,ema pos=backbone_p5,backbone,neck,replace_c2psa dry_run=true

study: venv
	@test -f experiments/$(STUDY).yaml || { echo "no study '$(STUDY)'; choices: $$(ls experiments | sed 's/.yaml//' | tr '\n' ' ')"; exit 2; }
	$(PY) -m src.run -m --config-dir experiments --config-name $(STUDY)

aggregate: venv
	@test -n "$(SWEEP)" || { echo "no sweep found under outputs/sweeps; pass SWEEP=DIR"; exit 2; }
	$(PY) -m src.aggregate $(SWEEP)

sync: venv
	@test -n "$(SWEEP)" || { echo "no sweep found under outputs/sweeps; pass SWEEP=DIR"; exit 2; }
	$(PY) -m src.tracking sync $(SWEEP)

bench: venv
	$(PY) -m src.bench

test: venv
	$(PY) -m pytest

data-coco: venv
	$(PY) -m src.data.fetch coco --root $(DATASETS_DIR)/coco $(if $(ARCHIVES),--archives $(ARCHIVES))

data-visdrone: venv
	$(PY) -m src.data.fetch visdrone --root $(DATASETS_DIR)/VisDrone $(if $(ARCHIVES),--archives $(ARCHIVES))

clean:
	rm -rf outputs/sweeps outputs/runs outputs/cache
