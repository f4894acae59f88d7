# Every target sets itself up: the first run creates .venv and installs taskforce into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test unit integration conformance provider faults bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,dev,bench]'
	touch $(STAMP)

demo: $(STAMP)  ## the main job: fan a log analysis out over local workers (embedded Redis)
	$(BIN)/taskforce demo

test: $(STAMP)  ## lint, types, unit and integration tests (they start a Redis of their own)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -p no:cacheprovider

unit: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider tests/integration

conformance: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider tests/conformance

provider: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider tests/provider

faults: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider tests/faults

bench: $(STAMP)  ## every table of docs/benchmarks.md, as it was made (about 17 minutes)
	$(BIN)/python -m bench.fanout
	$(BIN)/python -m bench.delegation_cost --runs 100
	$(BIN)/python -m bench.memory
	$(BIN)/python -m bench.economy
	$(BIN)/python -m bench.backends
	$(BIN)/python -m bench.batch --items 100
	$(BIN)/python -m bench.real_provider
	$(BIN)/python -m bench.provider_limits
	$(BIN)/python -m bench.scaling
	$(BIN)/python -m bench.scaling --without-task-events

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache *.egg-info
