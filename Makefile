# Caseward: `make demo` runs the main job end to end; `make test` runs every test.
# Both create the virtual environment they need.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check lint typecheck serve bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m caseward.demo

test: $(STAMP) check
	$(BIN)/python -m pytest -n 2 -q

check: lint typecheck

lint: $(STAMP)
	$(BIN)/ruff check caseward cases flows tests benchmarks
	$(BIN)/ruff format --check caseward cases flows tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy caseward cases flows

serve: $(STAMP)
	$(BIN)/caseward serve

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_detect.py
	$(BIN)/python benchmarks/bench_email.py
	$(BIN)/python benchmarks/bench_advance.py

clean:
	rm -rf $(VENV) .caseward .pytest_cache .mypy_cache .ruff_cache
