# `make up`: the local stack on the Neon emulator with the real Pulumi CLI (no cloud account).
# `make test`: the whole test suite. Both create the virtualenv named in Pulumi.yaml, install the
# pinned dependencies and build (or reuse) the Go toolchain under .cache/.
PYTHON ?= python3
VENV := venv
BIN := $(VENV)/bin

.PHONY: up down url test lint bench toolchain

$(BIN)/activate: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(BIN)/activate

toolchain:
	scripts/pulumi-toolchain.sh >/dev/null

up: $(BIN)/activate
	$(BIN)/python -m scripts.local_stack up

down: $(BIN)/activate
	$(BIN)/python -m scripts.local_stack down

url: $(BIN)/activate
	@$(BIN)/python -m scripts.local_stack url $(APP)

test: $(BIN)/activate toolchain
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(BIN)/activate
	$(BIN)/ruff check .

bench: $(BIN)/activate toolchain
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done
