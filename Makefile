# sparsecore: every target creates .venv and installs the project on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-test
CONFIG ?= default
SEEDS  ?= 10

.PHONY: verilog test lint regress bench waves demo clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

## Verilog plus JSON manifest for $(CONFIG) in build/verilog/
verilog: $(STAMP)
	$(VENV)/bin/sparsecore verilog --config $(CONFIG) --out build/verilog

## The default test suite (numpy model, RTL under Verilator, command line)
test: $(STAMP)
	$(PY) -m pytest

## Verilator -Wall lint of every emitted design, ruff on the Python
lint: $(STAMP)
	$(PY) -m verif.lint
	$(VENV)/bin/ruff check hw sim verif

clean:
	rm -rf build sim_build .pytest_cache .hypothesis .ruff_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
