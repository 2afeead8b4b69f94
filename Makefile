# The team WhatsApp inbox. `make` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
RUN := $(UV) run --all-packages --locked

.PHONY: help uv generate web web-deps web-types browser bench bench-scale screenshots install infra-install infra-up infra-down dev down status test test-only ferretdb-test lint protos protos-check format

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

uv: ## install uv (the Python package manager) when missing
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install -q "uv>=0.9"

install: uv ## Python dependencies of every package (uv workspace, locked)
	$(UV) sync --all-packages --locked

infra-install: install ## fetch Kafka (Maven Central) and build FerretDB (Go module proxy) into .local/
	$(RUN) python -m inbox_testkit.devinfra install

infra-up: infra-install ## start Kafka and the database on their default ports
	$(RUN) python -m inbox_testkit.devinfra up

infra-down: ## stop Kafka and the database
	-$(RUN) python -m inbox_testkit.devinfra down

web: ## build the web UI (web/dist, served by the gateway at /)
	cd web && (npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error) && npm run build

web-deps: ## the web UI's npm packages when missing (web/node_modules, from package-lock.json; lint needs openapi-typescript)
	@test -x web/node_modules/.bin/openapi-typescript -a -x web/node_modules/.bin/tsc || \
		(cd web && (npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error))

web-types: install web-deps ## regenerate web/openapi.json and web/src/api-types.ts from the gateway's models
	$(RUN) python scripts/web_types.py generate

browser: ## Debian's Chromium for the browser tests (browsers cannot be downloaded here)
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

screenshots: infra-install web browser ## the browser tests, keeping their screenshots in docs/screenshots
	INBOX_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(RUN) pytest -q -p no:randomly tests/browser

dev: infra-up web ## everything: infrastructure, every service and a seeded demo workspace, left running (`make down` stops it)
	$(RUN) python -m inbox_testkit.devinfra services-up
	$(RUN) python deploy/local/seed_demo.py $(if $(LIVE),--live,)

down: ## stop the services and the infrastructure started by `make dev`
	-$(RUN) python -m inbox_testkit.devinfra services-down
	-$(RUN) python -m inbox_testkit.devinfra down

status: ## what is running
	$(RUN) python -m inbox_testkit.devinfra status

lint: install web-deps ## ruff, mypy, generated code in sync with protos/ and the gateway's models, no tracked file pointing outside the checkout
	$(RUN) ruff check .
	$(RUN) mypy libs/inbox-core/src libs/inbox-testkit/src services/*/src scripts
	$(RUN) python scripts/outside_paths.py
	$(RUN) python scripts/protos.py check
	$(RUN) python scripts/k8s_topics.py check
	$(RUN) python scripts/asyncapi.py check
	$(RUN) python scripts/web_types.py check

protos: install ## regenerate libs/inbox-protos from protos/
	$(RUN) python scripts/protos.py generate

generate: protos web-deps ## regenerate everything derived: protos, k8s topics, AsyncAPI document, web types
	$(RUN) python scripts/k8s_topics.py generate
	$(RUN) python scripts/asyncapi.py generate
	$(RUN) python scripts/web_types.py generate

protos-check: install ## fail when libs/inbox-protos is not what protos/ generates
	$(RUN) python scripts/protos.py check
	$(RUN) python scripts/k8s_topics.py check
	$(RUN) python scripts/asyncapi.py check

test: infra-install web browser lint ferretdb-test test-only ## lint and the whole suite against real Kafka and a real database server

ferretdb-test: ## the Go differential tests of our FerretDB patches (deploy/local/ferretdb/test.sh, ~1 min)
	bash deploy/local/ferretdb/test.sh

test-only: ## the suite alone (starts its own Kafka and database on free ports)
	$(RUN) pytest -q -p no:randomly

bench: infra-install ## every benchmark against the real stack, bounded (~15 min): one table, bench/results/summary.json
	$(RUN) python bench/run_all.py

bench-scale: infra-install ## the list through the gateway at 1,000,000 conversations (seeded once into .local/bench-scale; first run ~1 h)
	$(RUN) python bench/conversation_list_scale.py
