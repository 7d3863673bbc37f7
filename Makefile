# Two entry points for a fresh machine (Python 3.11): `make demo` and `make test`.
# Each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
RUNS   ?= demo_runs

.PHONY: demo test install install-dev lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## The main job: SynthFER -> shipped checkpoints -> embedding runs -> metrics -> dashboard.
demo: $(VENV)/.installed
	$(BIN)/ferembed demo --runs $(RUNS)

## The tests (CI runs exactly this). Real-data tests run when ../shared/datasets exists.
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check ferembed dashboard tests bench scripts
	$(BIN)/ruff format --check ferembed dashboard tests bench scripts

bench: $(VENV)/.installed
	$(BIN)/python bench/bench_models.py
	$(BIN)/python bench/bench_train.py
	$(BIN)/python bench/bench_metrics.py --sizes 20000,100000

clean:
	rm -rf $(RUNS) .pytest_cache
