# The two commands of the README:
#   make demo   set up .venv (if missing) and run the main job on the built-in synthetic set
#   make test   set up .venv (if missing) and run the test suite
# Works on a machine with nothing but python3 (>= 3.10) and pip's registry.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
VSSL   := $(VENV)/bin/vssl
STAMP  := $(VENV)/.installed
DEMO_SWEEP ?= sweeps/table1-mini.yaml

.PHONY: setup demo test clean help

help:
	@echo "make demo   - set up .venv and run the main job (synthetic data -> sweep -> table)"
	@echo "make test   - set up .venv and run the tests"
	@echo "make clean  - remove runs/ and generated data/ (keeps .venv)"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install -e '.[test]'
	bash scripts/install_system_deps.sh $(PY) || echo "note: optional system packages not installed (torchcodec tests will skip)"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VSSL) synth
	$(VSSL) sweep $(DEMO_SWEEP) --table

test: setup
	$(PY) -m pytest -q

clean:
	rm -rf runs data
