# The two commands a newcomer needs: `make run` and `make test` (README.md).
SHELL := /bin/bash
PYTHON ?= python3
UV := $(PYTHON) -m uv
PORT ?= 8000

.PHONY: install run test services browser lint demo

install:
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	@$(UV) sync --frozen --quiet

run: install
	@mkdir -p var
	@$(UV) run python manage.py migrate --noinput
	@$(UV) run python manage.py catalog_sync
	@$(UV) run python manage.py demo_data
	@echo
	@echo "  Flywheel is starting at http://127.0.0.1:$(PORT)/  (dev mailbox: http://127.0.0.1:$(PORT)/dev/mailbox/)"
	@echo
	@PORT=$(PORT) $(UV) run honcho start -f Procfile

services:
	@bash scripts/services.sh

browser:
	@bash scripts/browser.sh

test: install services browser
	@$(UV) run pytest

lint: install
	@$(UV) run ruff check .
	@$(UV) run python manage.py makemigrations --check --dry-run
