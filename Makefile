# Two commands matter: `make demo` and `make test`. Both build the virtualenv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION = 20
export CDK_DISABLE_CLI_TELEMETRY = true

.PHONY: demo local test lint typecheck check synth load bench clean

$(STAMP): requirements/lambda.txt requirements/dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)  ## the whole loop on this machine: emulator, stand-in, scanner, rotators, DLQ
	$(BIN)/python -m localenv.demo --workdir .demo

test: $(STAMP)  ## every test, the CDK synth included (the 10,000-secret load runs in `make load`)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

synth: $(STAMP)  ## synthesize the stack into cdk.out, dependencies bundled without Docker
	CDK_OUTDIR=cdk.out $(BIN)/python app.py

load: $(STAMP)  ## 10,000 due secrets through the local loop, as a test
	LOAD_SECRETS=10000 $(BIN)/python -m pytest -m load -s tests/faults

bench: $(STAMP)  ## load figures at a chosen size, against a baseline in the same run
	$(BIN)/python bench/load.py --secrets $${SECRETS:-2000}

clean:
	rm -rf cdk.out .demo .pytest_cache .mypy_cache .ruff_cache

local: $(STAMP)  ## the demo, then keep the local environment up for momento-keys
	$(BIN)/python -m localenv.demo --workdir .demo --serve
