# The two commands of the README:
#   make demo   set up .venv (if missing) and run the main job on the built-in synthetic set
#   make test   set up .venv (if missing) and run the test suite
# make clean removes only what demo and table1-cpu wrote (the synthetic set, their sweep folders and logs).
# Works on a machine with nothing but python3 (>= 3.10) and pip's registry.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
VSSL   := $(VENV)/bin/vssl
STAMP  := $(VENV)/.installed
DEMO_SWEEP ?= sweeps/table1-mini.yaml
# Torch threads per demo process: two processes of 1 thread + 1 decoding worker each fit a 2-core machine;
# raise it on a bigger machine: make demo DEMO_THREADS=4
DEMO_THREADS ?= 1
# What demo and table1-cpu write, and all `make clean` removes: `vssl synth`'s default folder ($VSSL_DATA, as the
# CLI reads it, default ./data) and runs/<name> of each sweep (the YAML's `name:`), never other runs or datasets
SYNTH_DIR := $(or $(VSSL_DATA),data)/synthetic
DEMO_NAME = $(shell sed -n "s/^name:[[:space:]]*[\"']\{0,1\}\([A-Za-z0-9][A-Za-z0-9._-]*\).*/\1/p" $(DEMO_SWEEP) 2>/dev/null)

.PHONY: setup demo test test-fast lint table1-cpu clean help

help:
	@echo "make demo   - set up .venv and run the main job (synthetic data -> sweep -> table)"
	@echo "make test   - set up .venv and run the tests"
	@echo "make test-fast - the tests not marked slow (a quick check while editing)"
	@echo "make lint   - ruff (lint + format check) and the import-layer contract (lint-imports)"
	@echo "make table1-cpu - the 5-seed CPU table: two sweep processes (3D rows | the rest), then the report"
	@echo "make clean  - remove what demo and table1-cpu wrote: $(SYNTH_DIR), runs/$(DEMO_NAME), runs/table1-cpu"
	@echo "              and their logs (keeps .venv, other runs and datasets)"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install -e '.[test]'
	bash scripts/install_system_deps.sh $(PY) || echo "note: optional system packages not installed (torchcodec tests will skip)"
	touch $(STAMP)

setup: $(STAMP)

# $(call two_sweeps,SWEEP,THREADS,LOG,FLAGS): two sweep processes share the sweep folder (a running cell is
# locked). The background one takes the 3D rows first and logs to LOG; the foreground one (FLAGS: e.g.
# --no-progress) goes down the whole list, and the background one joins it when its 3D rows are done (the 2D rows
# cost more). A later pass finds every cell complete.
define two_sweeps
	(OMP_NUM_THREADS=$(2) $(VSSL) sweep $(1) --no-progress --only inflate=True; \
	 OMP_NUM_THREADS=$(2) $(VSSL) sweep $(1) --no-progress) > $(3) 2>&1 & \
	sleep 5; OMP_NUM_THREADS=$(2) $(VSSL) sweep $(1) $(4); wait
endef

demo: setup
	$(VSSL) synth
	mkdir -p runs
	$(call two_sweeps,$(DEMO_SWEEP),$(DEMO_THREADS),runs/demo-3d.log,)
	$(VSSL) sweep $(DEMO_SWEEP) --table

# Two workers of one torch thread each (tests/conftest.py keeps a file, and all real-SLURM tests, on one worker).
test: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -q --durations=25 -n 2 --dist loadgroup

test-fast: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m "not slow" -n 2 --dist loadgroup

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

# The informative CPU table (74-87 min on 2 cores here; the issue allows 90): two local processes of one torch
# thread each share the sweep (cells are locked while they run). A last pass then finds every cell complete (or
# runs what a failed background process left, whose exit status `wait` does not check) and prints "85 of 85
# cells complete"; the report goes to runs/table1-cpu/report.
table1-cpu: setup
	$(VSSL) synth
	mkdir -p runs
	$(call two_sweeps,sweeps/table1-cpu.yaml,1,runs/table1-cpu-3d.log,--no-progress)
	OMP_NUM_THREADS=1 $(VSSL) sweep sweeps/table1-cpu.yaml --no-progress
	OMP_NUM_THREADS=1 $(VSSL) report runs/table1-cpu

# An empty DEMO_NAME (DEMO_SWEEP missing, or a name vssl would refuse) removes no sweep folder, never runs/ itself
clean:
	rm -rf -- "$(SYNTH_DIR)" $(if $(DEMO_NAME),"runs/$(DEMO_NAME)") runs/demo-3d.log runs/table1-cpu runs/table1-cpu-3d.log
