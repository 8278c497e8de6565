# Account analytics lakehouse — developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JARS_STAMP := .cache/jars/.resolved
ASSETS_STAMP := .cache/docs-assets/.fetched
LINT_DIRS := $(wildcard jobs tests dags notebooks)

export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup jars demo test test-fast lint fmt lock clean clean-demo airflow-demo cluster-check bench crash-test

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS=":.*## "} {printf "  make %-10s %s\n", $$1, $$2}'

setup: $(STAMP) $(JARS_STAMP) $(ASSETS_STAMP)  ## Create .venv, install pinned packages, Delta's jars, Data Docs assets (idempotent)
	@echo "setup: ready (.venv/bin/lakehouse, Delta jars in .cache/jars)"

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "setup: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11 setup'" >&2; exit 1; }
	@command -v java >/dev/null || { echo "setup: java not found; Spark needs Java 17 (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check "uv==0.13.9"
	$(BIN)/uv pip install -q -p $(BIN)/python --compile-bytecode -r requirements.lock
	$(BIN)/uv pip install -q -p $(BIN)/python --no-deps -e .
	touch $@

jars: $(JARS_STAMP)  ## Resolve Delta's jars from Maven Central into .cache/jars; compile jvm/src
$(JARS_STAMP): $(STAMP) conf/lakehouse.yaml $(wildcard jvm/src/lakehouse/*/*.java)
	$(BIN)/python -m jobs.jars resolve && touch $@

$(ASSETS_STAMP): $(STAMP) jobs/docs_assets.py  # CSS/JS the Data Docs pages use, from the npm registry
	$(BIN)/python -m jobs.docs_assets fetch && touch $@

demo: setup  ## Generate the small preset, run the pipeline over several days, print the summary
	$(BIN)/python -m jobs.demo

# Airflow against a SQLite metadata DB in .airflow/, the DAGs of dags/, tiny generated data
AIRFLOW_ENV := AIRFLOW_HOME=$(CURDIR)/.airflow AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False LAKEHOUSE_LANDING=$(CURDIR)/.airflow/landing \
	LAKEHOUSE_WAREHOUSE=$(CURDIR)/.airflow/warehouse

airflow-demo: setup  ## Run the daily DAG in Airflow end to end for two days of tiny data
	$(AIRFLOW_ENV) $(BIN)/airflow db migrate >/dev/null
	test -d .airflow/landing || $(BIN)/lakehouse generate --preset tiny --days 2 --seed 7 --out .airflow/landing
	$(AIRFLOW_ENV) $(BIN)/airflow dags test account_analytics_daily 2026-03-06T06:00:00+00:00
	$(AIRFLOW_ENV) $(BIN)/airflow dags test account_analytics_daily 2026-03-07T06:00:00+00:00
	$(AIRFLOW_ENV) $(BIN)/lakehouse runs

cluster-check: setup  ## A Spark standalone master + 2 workers on loopback run a day; compare with local
	test -d .cache/cluster-check/landing || $(BIN)/lakehouse generate --preset tiny --days 1 --seed 7 --out .cache/cluster-check/landing
	$(BIN)/python -m jobs.cluster_check --landing .cache/cluster-check/landing --date 2026-03-05 --out .cache/cluster-check

# Two workers suit the 2-core CI machine; each is a Spark driver with up to 8 GiB of heap.
TEST_WORKERS ?= 2
TEST_DIST := -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

test: setup  ## Run the whole test suite on TEST_WORKERS pytest-xdist workers (CI runs this)
	$(BIN)/python -m pytest $(TEST_DIST)

test-fast: setup  ## Tests without the slow end-to-end ones
	$(BIN)/python -m pytest $(TEST_DIST) -m "not slow"

crash-test: setup  ## SIGKILL a run's driver at 20 points and stop one at 6 silver commits, re-run, compare (issue 8; the suite runs 2 + 2)
	LAKEHOUSE_CRASH_POINTS=20 $(BIN)/python -m pytest tests/test_crash.py -s -k "sigkill or repaired"

BENCH_PRESET ?= medium
BENCH_COST_PRESET ?= small
BENCH_COST_DAYS ?= 30
BENCH_BACKFILL_PRESET ?= tiny
bench: setup  ## Benchmarks, not part of `make test` (issue 7): results in bench/results/ and docs/benchmarks.md
	$(BIN)/python -m jobs.bench throughput --preset $(BENCH_PRESET) --markdown
	$(BIN)/python -m jobs.bench cost --preset $(BENCH_COST_PRESET) --days $(BENCH_COST_DAYS) --markdown
	$(BIN)/python -m jobs.bench backfill --preset $(BENCH_BACKFILL_PRESET) --days 7 --markdown

lint: setup  ## ruff lint + format check
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/ruff format --check $(LINT_DIRS)

fmt: setup  ## Apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix $(LINT_DIRS)
	$(BIN)/ruff format $(LINT_DIRS)

lock:  ## Re-compile requirements.lock from pyproject.toml (needs uv)
	uv pip compile pyproject.toml --extra dev --extra notebooks --python-version 3.11 -o requirements.lock

clean-demo:  ## Remove the default landing zone and warehouse the demo writes
	rm -rf landing warehouse

clean: clean-demo  ## Remove the virtualenv, caches, warehouse and demo data
	rm -rf $(VENV) .cache spark-warehouse metastore_db .pytest_cache
