# aeflow: `make run` sets up and runs the pipeline; `make test` sets up and runs lint + tests.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.aeflow-installed
export PATH := $(abspath $(BIN)):$(PATH)
export PYTHONUNBUFFERED := 1

.PHONY: setup run test lint ui server benchmark clean

# pip (not uv/poetry): it honours this machine's pip settings and local wheels. The torch triple is pinned
# in pyproject.toml; everything else is pinned in constraints.txt.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,spark]'
	touch $(STAMP)

setup: $(STAMP)

# `aeflow recover` first: a dvc killed while writing its run lock (.dvc/tmp/rwlock) would block every later run.
run: setup  ## ingest → validate → train → evaluate → sweep → report, on the offline defaults
	aeflow recover --quiet
	dvc repro
	@echo "Report: reports/index.html   MLflow UI: make ui"

# Two workers (pytest-xdist), one test file each at a time: a file's tests share fixtures (a project copy,
# a tracking server) and run in order, and the two cores stay busy while one worker waits on dvc or a
# server. One torch thread per process: two workers with two threads each would oversubscribe the cores
# (spinning threads made small trainings up to 7x slower when two ran at once).
test: setup lint  ## the CI command
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 pytest -n 2 --dist loadfile

lint: setup
	ruff check src pipelines tests benchmarks

ui: setup  ## MLflow UI on http://127.0.0.1:5000 (local only)
	mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000

# A team's tracking server: MLflow on PostgreSQL ($$AEFLOW_DATABASE_URL, else a local cluster in .aeflow/server)
server: setup
	aeflow server --port 5000

benchmark: setup
	python benchmarks/mnist_vs_pca.py

clean:
	rm -rf data models plots/*/recon plots/*/sweep results/*/evaluation reports mlflow.db mlartifacts
