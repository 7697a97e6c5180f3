# The two commands a newcomer needs: `make run` and `make test` (README.md).
SHELL := /bin/bash
PYTHON ?= python3
UV := $(PYTHON) -m uv
PORT ?= 8000
# The demo product (demo_product/): the builtin products' workspaces, on an origin of their own.
DEMO_PRODUCT_PORT ?= 8001
DEMO_PRODUCT_URL ?= http://127.0.0.1:$(DEMO_PRODUCT_PORT)

.PHONY: install run test services browser lint demo screenshots

# uv comes from PyPI: into the interpreter if it allows it, else into the user's site (PEP 668
# systems refuse both plain installs, hence the last resort). --compile-bytecode compiles the
# dependencies (about 30 s of CPU, once per uv.lock: the stamp file; uv checks every file again
# each time it is asked, 3 s): every process of `make run` then starts in about a third of the
# CPU time, also where PYTHONDONTWRITEBYTECODE is set.
install:
	@$(PYTHON) -m uv --version >/dev/null 2>&1 \
	  || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv 2>/dev/null \
	  || $(PYTHON) -m pip install --quiet --disable-pip-version-check --user uv 2>/dev/null \
	  || $(PYTHON) -m pip install --quiet --disable-pip-version-check --user --break-system-packages uv
	@$(UV) sync --frozen --quiet
	@[ .venv/.flywheel-bytecode -nt uv.lock ] || { $(UV) sync --frozen --quiet --compile-bytecode && touch .venv/.flywheel-bytecode; }

run: install
	@mkdir -p var
	@DEMO_PRODUCT_URL=$(DEMO_PRODUCT_URL) $(UV) run python manage.py dev_setup
	@echo
	@echo "  Flywheel is starting at http://127.0.0.1:$(PORT)/  (dev mailbox: http://127.0.0.1:$(PORT)/dev/mailbox/)"
	@echo "  The demo product (Tracker, Wiki, Service Desk workspaces) at $(DEMO_PRODUCT_URL)/"
	@echo
	@echo "==> starting the Procfile (web, worker, beat, stripe, product); Ctrl-C stops them all"
	@PORT=$(PORT) SITE_URL=$${SITE_URL:-http://127.0.0.1:$(PORT)} DEMO_PRODUCT_PORT=$(DEMO_PRODUCT_PORT) \
	  DEMO_PRODUCT_URL=$(DEMO_PRODUCT_URL) $(UV) run python scripts/procfile.py --first web --first-url http://127.0.0.1:$(PORT)/

services:
	@bash scripts/services.sh

browser:
	@bash scripts/browser.sh

test: install services browser
	@$(UV) run ruff check .
	@$(UV) run lint-imports
	@$(UV) run pytest

lint: install
	@$(UV) run ruff check .
	@$(UV) run python manage.py makemigrations --check --dry-run

# Full-page PNGs of every page at 1280 and 390 px on demo data, in a throwaway system of their
# own (scripts/screenshots.py). OUT=dir changes the folder (var/screenshots/); DOCS=1 also
# refreshes the pictures in docs/screenshots/ that README.md shows.
screenshots: install browser
	@$(UV) run python scripts/screenshots.py $(if $(OUT),--out "$(OUT)") $(if $(DOCS),--docs)
