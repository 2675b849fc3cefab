# PartnerHub tasks. GNU make; recipes are POSIX sh.
#
#   make demo    install, migrate the embedded SQLite database, load demo data, serve on :8000
#   make test    install, run the whole test suite (PostgreSQL when DATABASE_URL is set)
#
# Installation happens on demand: a virtualenv in .venv, the project and its dev tools pinned by
# constraints.txt. It is repeated only when pyproject.toml or constraints.txt change.

SHELL := /bin/sh
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.partnerhub-installed
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k scoring -x"`.
PYTEST_ARGS ?=
DEMO_ADDR ?= 127.0.0.1:8000

.PHONY: help install demo test lint migrate worker beat clean

help:
	@echo "make demo          install, migrate, load the demo workspaces and serve on http://$(DEMO_ADDR)/"
	@echo "make test          run the test suite (SQLite; PostgreSQL when DATABASE_URL is set)"
	@echo "make lint          ruff check and ruff format --check"
	@echo "make migrate       apply database migrations"
	@echo "make worker        run a Celery worker (needs REDIS_URL)"
	@echo "make beat          run the Celery beat scheduler (needs REDIS_URL)"
	@echo "make bench-NAME    run bench/NAME.py, e.g. make bench-partners"
	@echo "make clean         remove the virtualenv, caches and collected static files"

# The interpreter: python3.11, or python3 when that is 3.11. A half-created virtualenv is removed
# so the next run starts over instead of finding an interpreter without pip.
$(BIN)/python:
	@py="$(PYTHON)"; \
	command -v "$$py" >/dev/null 2>&1 || py=python3; \
	if ! "$$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then \
		echo "PartnerHub needs Python 3.11. Install it, or point make at it: make PYTHON=/path/to/python3.11" >&2; \
		exit 1; \
	fi; \
	echo "Creating $(VENV) with $$py"; \
	"$$py" -m venv "$(VENV)" || { rm -rf "$(VENV)"; exit 1; }

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch "$@"

install: $(STAMP)

var:
	@mkdir -p var

migrate: $(STAMP) | var
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py seed_demo
	@echo "Serving PartnerHub on http://$(DEMO_ADDR)/ (Ctrl-C stops it)."
	$(BIN)/python manage.py runserver $(DEMO_ADDR)

# pytest's exit status is passed through; 5 (nothing collected) is a failure too, and says so.
test: $(STAMP) | var
	@status=0; $(BIN)/python -m pytest $(PYTEST_ARGS) || status=$$?; \
	if [ "$$status" -eq 5 ]; then echo "make test: pytest collected no tests; that is a failure." >&2; fi; \
	exit "$$status"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

worker: $(STAMP)
	$(BIN)/celery -A partnerhub worker -l info

beat: $(STAMP) | var
	$(BIN)/celery -A partnerhub beat -l info --schedule var/celerybeat-schedule

bench-%: $(STAMP)
	$(BIN)/python bench/$*.py

# The demo database (var/partnerhub.sqlite3) is kept; delete it to start the demo over.
clean:
	rm -rf "$(VENV)" .ruff_cache .pytest_cache build dist ./*.egg-info var/static var/celerybeat-schedule*
	find . -path "./$(VENV)" -prune -o -name __pycache__ -type d -exec rm -rf {} +
