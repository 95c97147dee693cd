# The two commands a newcomer runs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
INSTALL := $(PIP) install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: demo test test-fast check lint typecheck install install-test bench soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(INSTALL) -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(INSTALL) -e '.[test]'
	@# the browser tests drive Debian's chromium (Playwright's own browser download is not used)
	command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium)
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed
	$(INSTALL) -e '.[bench]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/modelyard quickstart
	@echo
	@echo "Open the web UI over this data: $(BIN)/modelyard ui"
	@echo "  then open the address it prints: http://127.0.0.1:8700/signin#key=... (Ctrl-C stops it)"

lint: install-test
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports

typecheck: install-test
	$(BIN)/mypy

check: lint typecheck

# one BLAS thread per process: two test workers (and the servers they start) on two cores
# would otherwise oversubscribe them, and OpenBLAS's spinning threads slow fits ~30x
test: check
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadfile

# the inner loop: no server or serving process, no PostgreSQL (tests that need them are
# marked slow, by hand or by tests/conftest.py; one that starts a process here fails)
test-fast: install-test
	MODELYARD_TEST_FAST=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
		$(BIN)/python -m pytest -n 2 -m "not slow and not postgres" -q

bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/tracking.py
	$(BIN)/python benchmarks/serving.py
	$(BIN)/python benchmarks/predictlog.py
	$(BIN)/python benchmarks/monitoring.py  # makes .venv-evidently (Evidently needs pandas < 3)

# load with checks (benchmarks/soak_*.py, 2-5 min here): single-row predictions against
# `modelyard serve` (a 90/10 canary and a shadow), then the prediction log against the
# answers; clients logging batches through `modelyard server`, then every point read back.
# Smaller: make soak SOAK_PREDICTIONS=5000 SOAK_CONCURRENCY=16 SOAK_CLIENTS=2
# On PostgreSQL (a throwaway database there): SOAK_DB=postgresql://postgres@127.0.0.1:5432/postgres
SOAK_PREDICTIONS ?= 100000
SOAK_CONCURRENCY ?= 64
SOAK_CLIENTS ?= 10
SOAK_DB ?=

soak: install
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/python benchmarks/soak_serving.py \
		--predictions $(SOAK_PREDICTIONS) --concurrency $(SOAK_CONCURRENCY)
	$(BIN)/python benchmarks/soak_tracking.py --clients $(SOAK_CLIENTS) $(if $(SOAK_DB),--db $(SOAK_DB))

clean:
	rm -rf $(VENV) .venv-evidently .modelyard .pytest_cache .mypy_cache .ruff_cache
