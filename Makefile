# beacon-gateway developer entry points. `make demo` runs the whole system, `make test` every
# test and check (what CI runs). Each creates its own virtualenv under .venv and installs what
# it needs.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: demo test lint typecheck imports unit bench fuzz faults clean

$(RUN_STAMP): pyproject.toml scripts/venv.sh
	@PYTHON=$(PYTHON) scripts/venv.sh $(VENV) $@

$(DEV_STAMP): pyproject.toml scripts/venv.sh
	@PYTHON=$(PYTHON) scripts/venv.sh $(VENV) $@ dev
	@touch $(RUN_STAMP)

$(BENCH_STAMP): pyproject.toml scripts/venv.sh
	@PYTHON=$(PYTHON) scripts/venv.sh $(VENV) $@ bench
	@touch $(RUN_STAMP)

## demo: the whole system: a simulated scene through the real gateway to a private mosquitto,
# the events as a subscriber sees them, and a summary scored against the scene's ground truth.
# SCENE=airport for the airport scene (or a scene file); DEMO_ARGS for more (--speed, --seed,
# --quiet; see beacon-gateway demo --help). Ctrl-C stops everything it started.
SCENE ?= store
DEMO_ARGS ?=
demo: $(RUN_STAMP)
	@scripts/system-deps.sh demo
	$(BIN)/beacon-gateway demo --scene "$(SCENE)" $(DEMO_ARGS)

## test: every check CI runs (lint, format, types, import contracts, tests with coverage gates)
test: lint typecheck imports unit

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

imports: $(DEV_STAMP)
	$(BIN)/lint-imports
	$(BIN)/beacon-gateway schemas --check
	$(BIN)/beacon-gateway config-reference --check

unit: $(DEV_STAMP)
	@scripts/system-deps.sh
	$(BIN)/pytest --cov --cov-report= -p no:cacheprovider
	$(BIN)/coverage report --include='eid/*' --fail-under=95

## bench: the performance figures recorded in docs/performance.md
# glibc keeps freed blocks below its dynamic mmap threshold; a fixed threshold returns large
# temporaries to the OS, as the deployment does (docs/performance.md, "Memory").
bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/eid_bench.py
	MALLOC_MMAP_THRESHOLD_=131072 $(BIN)/python benchmarks/resolver_bench.py
	$(BIN)/python benchmarks/sim_bench.py

## fuzz: every fuzz harness for FUZZ_SECONDS each, FUZZ_JOBS at a time (docs/fuzzing.md);
# FUZZ_TARGETS picks some (e.g. "frames capture"). New inputs and crashes go to build/fuzz/.
FUZZ_SECONDS ?= 600
FUZZ_JOBS ?= 2
FUZZ_TARGETS ?=
fuzz: $(DEV_STAMP)
	$(BIN)/python fuzz/run.py --seconds $(FUZZ_SECONDS) --jobs $(FUZZ_JOBS) $(FUZZ_TARGETS)

## faults: the fault suite's long mode (more kills, longer outages, the full 24-hour soak); the
# counted results print at the end and go to build/faults.jsonl (docs/reliability.md).
faults: $(DEV_STAMP)
	@scripts/system-deps.sh
	@mkdir -p build && rm -f build/faults.jsonl
	BEACON_GATEWAY_LONG_FAULTS=1 BEACON_GATEWAY_FAULT_REPORT=build/faults.jsonl \
		$(BIN)/pytest tests/faults -p no:cacheprovider -o timeout=3600

clean:
	rm -rf $(VENV) .coverage .mypy_cache .ruff_cache .hypothesis build dist
