# reedit: two commands on a fresh machine.
#   make demo   install into .venv, then run the demo experiment
#   make test   install into .venv, check the import layers, run the test suite (what CI runs)
#   make walkthrough   the README's commands in a fresh copy with an empty home (CI runs it too)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The torch build this machine kind installs from its local mirror (see the README).
TORCH ?= torch==2.14.1 torchvision==0.29.1
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_HUB_DISABLE_PROGRESS_BARS ?= 1
export WANDB_MODE ?= disabled

.PHONY: install demo test test-external test-scale test-faults walkthrough lint bench
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@echo "Installing reedit and its dependencies into $(VENV) (about 6 GB; a few minutes)..."
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install $(TORCH) -e '.[dev]'
	touch $@

demo: install
	$(BIN)/python -m reedit +experiment=demo

test: install
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

walkthrough: install
	$(BIN)/python -m pytest -m walkthrough

# Several processes at once: Accelerate ranks on the demo's real tiny models (1, 2 and 3 ranks
# agree; a rank SIGKILLed mid-stage fails the run cleanly, a rerun completes it) and a sweep
# joining a Ray cluster started by the test (CI runs it).
test-scale: install
	$(BIN)/python -m pytest -m scale

# Faults at counted moments (tests/faults): the demo run SIGKILLed at 24 moments over every stage,
# a model's worker and a rank killed, the disk full (injected, and a real small tmpfs); each rerun
# gives the uninterrupted run's records, images and metrics (CI runs it).
test-faults: install
	$(BIN)/python -m pytest -m faults

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

bench: install
	$(BIN)/python benchmarks/suite.py

# The own-environment models on their repositories' real code (needs the snapshots: see the
# README). CI points REEDIT_EXTERNAL at them and turns a skipped test into a failure.
test-external: install
	$(BIN)/python -m pytest -m external
