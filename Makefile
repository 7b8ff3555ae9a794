# Caseward: `make demo` runs the main job end to end; `make test` runs every test.
# Both create the virtual environment they need.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test faults check lint typecheck serve bench lock clean

# constraints.txt pins every package to the versions the tests passed with.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# Resolve pyproject.toml's dependencies afresh in a scratch venv and pin the result.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e '.[dev]'
	{ head -n 2 constraints.txt; .lock-venv/bin/python -m pip freeze --exclude-editable; } \
		> constraints.new && mv constraints.new constraints.txt
	rm -rf .lock-venv

demo: $(STAMP)
	$(BIN)/python -m caseward.demo

test: $(STAMP) check
	$(BIN)/python -m pytest -n 2 -q

# only the fault-injection suite (part of test); CASEWARD_TEST_FAULT_SEED=N replays a run
faults: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q tests/test_fault_injection.py

check: lint typecheck

lint: $(STAMP)
	$(BIN)/ruff check caseward cases flows tests benchmarks docs
	$(BIN)/ruff format --check caseward cases flows tests benchmarks docs

typecheck: $(STAMP)
	$(BIN)/mypy caseward cases flows

serve: $(STAMP)
	$(BIN)/caseward serve

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_detect.py
	$(BIN)/python benchmarks/bench_email.py
	$(BIN)/python benchmarks/bench_advance.py
	$(BIN)/python benchmarks/bench_statements.py
	$(BIN)/python benchmarks/bench_bulk.py
	$(BIN)/python benchmarks/bench_webhook.py

clean:
	rm -rf $(VENV) .caseward .pytest_cache .mypy_cache .ruff_cache
