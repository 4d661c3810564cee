# reach: `make` reproduces everything; `make test` runs the test suite. Both set themselves up first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
SNAKEMAKE := $(VENV)/bin/snakemake
APT_TOOLS := ffmpeg espeak-ng
APT_OPTIONAL := chromium  # the report test's headless browser; skipped with a reason when absent
STAMP := $(VENV)/.installed

.PHONY: all env tools report test test-slurm lint bench clean

all: env
	$(SNAKEMAKE) --cores all

env: tools $(STAMP)

# Debian tools the workflow calls (ffmpeg renders and decodes media; espeak-ng speaks voice-overs).
tools:
	@missing=""; for t in $(APT_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing$$missing with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "error: missing$$missing. Install them (Debian: sudo apt-get install$$missing; conda: environment.yml)."; exit 1; \
	  fi; \
	fi
	@for t in $(APT_OPTIONAL); do command -v $$t >/dev/null && continue; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing $$t with apt-get"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$t >/dev/null; \
	  else echo "note: $$t not installed (optional: the report's browser test skips without it)"; fi; \
	done

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps musicnn==0.1.0
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

report: env
	$(SNAKEMAKE) --cores all results/report/report.html

test: env
	$(VENV)/bin/pytest -n 2 tests

# The tiny workflow through a real one-node Slurm on localhost (as root: installs slurm-wlm and munge when missing,
# starts and stops its own daemons), compared with a local run. Not part of `make test`.
test-slurm: env
	bash tests/slurm/run.sh

lint: env
	$(SNAKEMAKE) --lint

bench: env
	$(PY) benchmarks/ingest.py

clean:
	rm -rf results .snakemake
