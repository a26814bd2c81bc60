# The two commands: `make demo` and `make test`. Both install whatever is missing first.
SHELL := /bin/bash
.DEFAULT_GOAL := help
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools
STATE := .state
# A hashicorp/aws provider mirror (the folder holding registry.terraform.io/): the one named by TF_PROVIDER_MIRROR
# (it must hold the provider), else DEFAULT_MIRROR when it does; with neither, Terraform installs the provider from
# its registry, the ordinary way.
TF_PROVIDER_MIRROR ?=
DEFAULT_MIRROR ?= /opt/tf-plugins
# The emulator's address: the caller's AWS_ENDPOINT_URL when set (the conventional variable), else loopback:4566.
LOCAL_ENDPOINT ?= $(or $(AWS_ENDPOINT_URL),http://127.0.0.1:4566)
CLOUD_INIT := $(TOOLS)/cloud-init/usr/lib/python3/dist-packages

export TF_CLI_CONFIG_FILE := $(CURDIR)/$(TOOLS)/terraformrc
export CHECKPOINT_DISABLE := 1
export CDKTF_DISABLE_PLUGIN_CACHE_ENV := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CLOUD_INIT_PYTHONPATH := $(CURDIR)/$(CLOUD_INIT)
CDKTF := npx --no-install cdktf
LOCAL_AWS := AWS_ENDPOINT_URL=$(LOCAL_ENDPOINT) AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1

.PHONY: help install demo deploy-local destroy-local emulator-start emulator-stop synth test check lint rehearse bench docs lock clean

help:
	@echo "make demo           install, start the local AWS emulator, deploy the 'local' stack, show it"
	@echo "make destroy-local  tear the 'local' stack down and stop the emulator"
	@echo "make test           install, then run every test (unit, synth, validators, emulator end to end)"
	@echo "make check          the inner loop: lint, types, unit and synth tests without the slow ones (about a minute)"
	@echo "make rehearse       boot both nodes' real user data at once on this machine (root), print the checks"
	@echo "make bench          synth time: our provider loading vs the stock import (same run)"
	@echo "make synth          synthesize every environment into cdktf.out/"
	@echo "make docs           regenerate the settings table in docs/settings.md"

install: $(VENV)/.installed node_modules/.installed $(TOOLS)/terraformrc $(TOOLS)/.validators $(TOOLS)/checkov-venv/.installed

$(VENV)/.installed: requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	touch $@

# checkov in its own venv: its pins (boto3, pydantic, ...) would clash with requirements.lock.
$(TOOLS)/checkov-venv/.installed: requirements-checkov.lock
	test -x $(TOOLS)/checkov-venv/bin/python || $(PYTHON) -m venv $(TOOLS)/checkov-venv
	$(TOOLS)/checkov-venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.lock
	touch $@

node_modules/.installed: package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

PROVIDER := registry.terraform.io/hashicorp/aws
$(TOOLS)/terraformrc:
	@command -v terraform >/dev/null || { echo "terraform is not on PATH (README: what must be installed first)" >&2; exit 1; }
	@test -z "$(TF_PROVIDER_MIRROR)" || test -d "$(TF_PROVIDER_MIRROR)/$(PROVIDER)" || \
	  { echo "TF_PROVIDER_MIRROR=$(TF_PROVIDER_MIRROR) holds no $(PROVIDER)" >&2; exit 1; }
	mkdir -p $(TOOLS)
	mirror="$(TF_PROVIDER_MIRROR)"; \
	if [ -z "$$mirror" ] && [ -d "$(DEFAULT_MIRROR)/$(PROVIDER)" ]; then mirror="$(DEFAULT_MIRROR)"; fi; \
	if [ -n "$$mirror" ]; then \
	  printf 'provider_installation {\n  filesystem_mirror {\n    path    = "%s"\n    include = ["$(PROVIDER)"]\n  }\n  direct {\n    exclude = ["$(PROVIDER)"]\n  }\n}\n' "$$mirror" > $@; \
	else \
	  echo "# No provider mirror: Terraform installs $(PROVIDER) from its registry." > $@; fi

# Debian packages the validators and the rehearsal use (command:package); cloud-init's code is unpacked from
# Debian's package (not installed: /etc stays clean). MariaDB's server must not start on this host (policy-rc.d).
DEBIAN_TOOLS := shellcheck:shellcheck socat:socat unzip:unzip openssl:openssl keytool:openjdk-17-jre-headless \
  mariadbd:mariadb-server mariadb:mariadb-client run-parts:debianutils sshd:openssh-server rsync:rsync
# The system python3's modules the boot step's merge-config uses (on the rehearsal's nodes as on Amazon Linux 2023,
# whose python3-tomli and python3-tomli-w packages give the same modules).
DEBIAN_PYTHON_MODULES := tomli:python3-tomli tomli_w:python3-tomli-w
$(TOOLS)/.validators: Makefile
	mkdir -p $(TOOLS)/debs
	missing=""; for pair in $(DEBIAN_TOOLS); do command -v $${pair%%:*} >/dev/null || missing="$$missing $${pair#*:}"; done; \
	  for pair in $(DEBIAN_PYTHON_MODULES); do /usr/bin/python3 -c "import $${pair%%:*}" 2>/dev/null || missing="$$missing $${pair#*:}"; done; \
	  if [ -n "$$missing" ]; then \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d; \
	    status=0; { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; } || status=$$?; \
	    rm -f /usr/sbin/policy-rc.d; exit $$status; fi
	test -d $(CLOUD_INIT)/cloudinit || { \
	  (cd $(TOOLS)/debs && (apt-get download cloud-init 2>/dev/null || { apt-get update -qq && apt-get download cloud-init; })) \
	  && dpkg -x $(TOOLS)/debs/cloud-init_*.deb $(TOOLS)/cloud-init; }
	touch $@

emulator-start: install
	$(LOCAL_AWS) $(PY) scripts/emulator.py start

emulator-stop:
	$(LOCAL_AWS) $(PY) scripts/emulator.py stop

deploy-local: emulator-start
	$(LOCAL_AWS) $(PY) scripts/preflight.py local
	$(LOCAL_AWS) $(CDKTF) deploy local --auto-approve --skip-provider-lock --outputs-file $(STATE)/outputs.json
	$(LOCAL_AWS) $(PY) scripts/verify.py local --outputs $(STATE)/outputs.json

demo: deploy-local
	$(LOCAL_AWS) $(PY) scripts/show_deployment.py --outputs $(STATE)/outputs.json --stack local

destroy-local: emulator-start
	$(LOCAL_AWS) $(CDKTF) destroy local --auto-approve --skip-provider-lock
	$(MAKE) --no-print-directory emulator-stop

synth: install
	$(CDKTF) synth

test: install lint
	$(PY) -m pytest

check: install lint
	$(PY) -m pytest -q tests/unit tests/synth -m "not slow and not e2e"

# The lint and type gate (settings in pyproject.toml).
lint: install
	$(VENV)/bin/ruff check apim_active_active scripts tests main.py
	$(VENV)/bin/ruff format --check apim_active_active scripts tests main.py
	$(VENV)/bin/mypy

rehearse: install
	$(PY) scripts/rehearse.py $(REHEARSE_ARGS)

bench: install
	$(PY) scripts/bench.py

docs: install
	$(PY) scripts/settings_docs.py --write docs/settings.md

lock:
	$(PY) -m pip install --quiet -r requirements.in -r requirements-dev.in
	(echo "# Generated by 'make lock' from requirements.in + requirements-dev.in: every package, exact version."; \
	  $(PY) -m pip freeze --exclude-editable) > requirements.lock
	rm -rf $(TOOLS)/checkov-venv && $(PYTHON) -m venv $(TOOLS)/checkov-venv
	$(TOOLS)/checkov-venv/bin/python -m pip install --quiet -r requirements-checkov.in
	(echo "# Generated by 'make lock' from requirements-checkov.in in a fresh venv: every package, exact version."; \
	  $(TOOLS)/checkov-venv/bin/python -m pip freeze --exclude-editable) > requirements-checkov.lock
	touch $(TOOLS)/checkov-venv/.installed

clean:
	rm -rf cdktf.out $(STATE) .pytest_cache
