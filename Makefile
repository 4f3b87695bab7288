# Every target installs what it needs on first use: a fresh clone needs only python3.11 and node 20.
SHELL := /bin/bash
PYTHON ?= python3.11
UV_VERSION := 0.13.8
VENV := .venv
UV := .venv-uv/bin/uv
PY := $(VENV)/bin/python
TENANT ?= demo
PORT ?= 3000
export PYTHONPATH := $(CURDIR)/layers/core/python:$(CURDIR)
export UV_PROJECT_ENVIRONMENT := $(VENV)
# jsii (the CDK's Node bridge) prints an end-of-life banner on Node 20; it still works there.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: help install local settle bank-statement reclear audit-verify test test-fast synth bench lint clean admin-key audit-iac risk-backtest

help:
	@echo "make local   - run the API on http://127.0.0.1:$(PORT) over moto, demo tenant seeded"
	@echo "make settle DATE=YYYY-MM-DD [KIND=intraday] - the run of settlement date DATE on the running local stack"
	@echo "make bank-statement DATE=YYYY-MM-DD INJECT=missing=1,returned=1,fee=1,cutoff=1 - the simulated bank's file (starts reconciliation)"
	@echo "make test    - the whole test suite (unit, integration, infra, e2e)"
	@echo "make synth TENANT=demo - synthesize one tenant's stack into cdk.out/"
	@echo "make reclear - re-clear what is still pending clearing on the running local stack"
	@echo "make audit-verify - verify the running local stack's audit log against its signed heads"
	@echo "make audit-iac - checkov on the synthesized templates (docs/iac-audit.md lists what it reports)"
	@echo "make bench   - benchmarks (requests, write units, ratios; see README)"
	@echo "make risk-backtest - replay a seeded, labelled day of attacks through the risk rules and detector"

# uv itself comes from PyPI into a private venv; it then installs the locked dependencies.
$(UV):
	$(PYTHON) -m venv .venv-uv
	.venv-uv/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

# checkov pins boto3 1.35 (the runtime pins 1.44): its own virtualenv, at a pinned version.
CHECKOV_VERSION := 3.3.30
CHECKOV := .venv-checkov/bin/checkov
$(CHECKOV):
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet checkov==$(CHECKOV_VERSION)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed

# The settlement run of DATE on the running local stack (make local in another terminal).
settle: install
	@test -n "$(DATE)" || { echo "usage: make settle DATE=YYYY-MM-DD"; exit 2; }
	$(PY) -m infra.local.settle --date $(DATE) --kind $(or $(KIND),daily)

# The simulated bank's statement of DATE into the running local stack's bucket, differences injected.
bank-statement:
	$(PY) -m infra.local.bank_statement --date $(DATE) --inject "$(INJECT)" --seed $(or $(SEED),0)

# Post every redemption and reversal still pending clearing on the running local stack (docs/runbook.md).
reclear: install
	$(PY) -m infra.reclear --endpoints-file .local/endpoints.json

# A deployed tenant: python -m infra.audit_verify --tenant NAME [--public-key pinned.der]
audit-verify: install
	$(PY) -m infra.audit_verify --endpoints-file .local/endpoints.json

local: install
	$(PY) -m infra.local --tenant $(TENANT) --port $(PORT)

test: install
	$(PY) -m pytest -n 2 --dist loadgroup

test-fast: install
	$(PY) -m pytest -n 2 tests/unit tests/integration

synth: install
	npx cdk synth -c tenant=$(TENANT) --quiet

# Figures, not pass/fail: counts that are deterministic (requests, write units) and ratios measured
# in one run on this shared machine.
BENCHES := cold_start issuance redemption clearing settlement audit reconciliation instant
bench: install
	@for b in $(BENCHES); do [ -f bench/$$b.py ] || continue; echo "== bench/$$b.py"; $(PY) bench/$$b.py || exit 1; echo; done

# Precision and recall per kind of attack on a seeded, generated day (docs/risk.md); SEED=N for another.
SEED ?= 18
risk-backtest: install
	$(PY) bench/risk_backtest.py --seed $(SEED)

# checkov on every synthesized template; the checks it fails by design are skipped in .checkov.yaml,
# each with its reason in docs/iac-audit.md. Anything else that fails, fails this target.
audit-iac: install $(CHECKOV)
	rm -rf .local/audit
	$(PY) -c "from infra.app import build_app; build_app(outdir='.local/audit', bundle=False).synth()"
	$(CHECKOV) --config-file .checkov.yaml --framework cloudformation --compact --quiet \
	    $(foreach t,$(wildcard .local/audit/*.template.json),-f $(t))

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .venv-uv .venv-checkov node_modules cdk.out .local .pytest_cache
