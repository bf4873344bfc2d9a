# LinguaFlex: two commands on a fresh machine with Python 3.11 and make.
#   make run   set everything up and serve the API on http://127.0.0.1:8000 (Stripe emulator if no keys)
#   make test  set up the dev environment and run the whole test suite
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PYTEST_ARGS ?=
PG_URL ?= postgres://postgres@127.0.0.1:5432/linguaflex
PORT ?= 8000
HOST ?= 127.0.0.1

.PHONY: run test test-postgres lint bench qa reliability collectstatic migrate demo check-deploy clean help \
	stack stack-down stack-test

help:
	@echo "make run | make test | make test-postgres | make bench | make qa | make reliability [RELIABILITY_BOUNDED=1] | make check-deploy | make clean"
	@echo "make stack | make stack-down | make stack-test"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Stamp files: dependencies are installed again only when a requirements file changes.
$(VENV)/.deps-run: requirements.txt | $(PY)
	$(PIP) install --quiet -r requirements.txt
	@touch $@

$(VENV)/.deps-dev: requirements.txt requirements-dev.txt | $(PY)
	$(PIP) install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.deps-run

migrate: $(VENV)/.deps-run
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py load_demo_data

run: demo
	PORT=$(PORT) HOST=$(HOST) $(PY) -m linguaflex.devserver

test: $(VENV)/.deps-dev
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.deps-dev
	$(VENV)/bin/ruff check .

test-postgres: $(VENV)/.deps-dev
	DATABASE_URL=$(PG_URL) $(PY) -m pytest $(PYTEST_ARGS)

$(VENV)/.deps-bench: requirements.txt requirements-dev.txt requirements-bench.txt | $(PY)
	$(PIP) install --quiet -r requirements-bench.txt
	@touch $@ $(VENV)/.deps-dev $(VENV)/.deps-run

# Every figure of issue 15's table in one run (bench/__main__.py), written to docs/PERFORMANCE.md.
# BENCH_ARGS=--quick: small sizes, proves it runs (CI); never a speed assertion.
BENCH_ARGS ?=
bench: $(VENV)/.deps-bench
	$(PY) -m bench $(BENCH_ARGS)

# Static files for production (WhiteNoise's manifest, under the production settings: the local ones
# write none). A deployment runs this after each release; make reliability runs it first.
collectstatic: $(VENV)/.deps-run
	DJANGO_SETTINGS_MODULE=linguaflex.settings.production SECRET_KEY=collectstatic-$$RANDOM-$$RANDOM-$$RANDOM-$$RANDOM-long-enough \
		DEBUG=false ALLOWED_HOSTS=localhost $(PY) manage.py collectstatic --noinput -v 0

check-deploy: $(VENV)/.deps-run
	DJANGO_SETTINGS_MODULE=linguaflex.settings.production SECRET_KEY=ci-check-deploy-$$RANDOM-$$RANDOM-$$RANDOM-$$RANDOM-$$RANDOM-long-enough \
		DEBUG=false ALLOWED_HOSTS=api.linguaflex.example $(PY) manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

# QA kit against a live server: emulator + gunicorn on loopback, newman, the flow script, the
# guide's curl blocks and schemathesis (see .ci/qa).
qa: $(VENV)/.deps-dev
	bash .ci/qa

# Reliability against gunicorn (production settings) + a throwaway PostgreSQL database + Redis + the
# emulator: the fault matrix and the race scenarios (bench/reliability/). A full run writes
# docs/RELIABILITY.md; RELIABILITY_BOUNDED=1 (CI) runs fewer rounds into reports/reliability/.
reliability: $(VENV)/.deps-dev collectstatic
	$(PY) -m bench.reliability $(if $(RELIABILITY_BOUNDED),--bounded,)

# The production stack on this machine (deploy/stack.py): nginx on http://127.0.0.1:8088 in front of
# two gunicorn instances, a Celery worker and beat, PostgreSQL, Redis and the Stripe emulator.
# make stack-down stops exactly what make stack started.
stack: $(VENV)/.deps-dev
	$(PY) deploy/stack.py up

stack-down: $(VENV)/.deps-dev
	$(PY) deploy/stack.py down

# 300 payments through nginx from 10 students while an app instance and the worker are killed and
# restarted (bench/stack_run.py); prints the figures, exit 1 on any broken invariant.
stack-test: $(VENV)/.deps-dev
	$(PY) -m bench.stack_run

