# The two commands of the quick start: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_FLAGS ?=

.PHONY: run test lint unit format bench clean pg pg-stop

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/engine run --local --state-dir state $(RUN_FLAGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy engine
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile
	@if command -v kubectl >/dev/null 2>&1; then \
	  kubectl kustomize config/ > $(VENV)/rendered-config.yaml \
	  && $(BIN)/kubernetes-validate --strict -k 1.31 --quiet $(VENV)/rendered-config.yaml; \
	else echo "kubectl not found: manifest validation left to the tests (skipped)"; fi

unit: $(STAMP)
	$(BIN)/pytest -q -n 2 --dist worksteal --durations=15

test: lint unit

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# A throwaway PostgreSQL for the journal's tests (its URL goes to .pg/url, which the
# tests read when ENGINE_TEST_POSTGRES_URL is unset).
pg:
	.ci/postgres start

pg-stop:
	.ci/postgres stop

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
