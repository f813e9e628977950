# Two entry points, each doing all set-up on a fresh machine:
#   make bench   run the bundled benchmark on the embedded default model (SmolLM2-135M)
#   make test    run the project's test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
MODELS ?= smollm2
PYTEST_ARGS ?=

.PHONY: bench test lint typecheck check sysdeps clean

# Debian's bubblewrap isolates model-written code; install it when we can (root or sudo).
sysdeps:
	@if ! command -v bwrap >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq bubblewrap; \
	  elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && sudo apt-get install -y -qq bubblewrap; \
	  else echo "llmbench: bubblewrap is missing; install it with: apt-get install bubblewrap" >&2; fi; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,embedded]'
	touch $(STAMP)

bench: sysdeps $(STAMP)
	$(BIN)/pytest --models=$(MODELS) --llmbench-backend=embedded -p no:cacheprovider -q $(PYTEST_ARGS)

test: sysdeps $(STAMP)
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check pytest_llmbench tests benchmarks
	$(BIN)/ruff format --check pytest_llmbench tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

clean:
	rm -rf $(VENV) .llmbench .pytest_cache .mypy_cache .ruff_cache
