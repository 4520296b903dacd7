# One command for newcomers and CI: `make test` creates the virtualenv named in
# Pulumi.yaml, installs the pinned dependencies and runs the whole test suite.
PYTHON ?= python3
VENV := venv
BIN := $(VENV)/bin

.PHONY: test lint bench emulator

$(BIN)/activate: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(BIN)/activate

test: $(BIN)/activate
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(BIN)/activate
	$(BIN)/ruff check .

bench: $(BIN)/activate
	for script in benchmarks/*.py; do $(BIN)/python $$script || exit 1; done
