# homelab.core developer entry points. `make setup` then `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
COLLECTION_LINK := collections/ansible_collections/homelab/core
# Molecule scenarios live in the top-level molecule/ folder next to galaxy.yml.
export MOLECULE_GLOB := molecule/*/molecule.yml
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)
SCENARIO ?=
# Whole outputs of the long targets; on failure the reasons are repeated at the end.
TEST_LOGS := tests/output/logs

.PHONY: help setup lint unit sanity molecule test bench clean

help:  ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

setup: $(VENV)/.requirements-installed $(COLLECTION_LINK)  ## Create .venv, install Python deps, link the collection (idempotent).

$(VENV)/.requirements-installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../.. $@

lint: setup  ## yamllint, ansible-lint (production profile), module sanity, collection ranges.
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --profile production
	tests/scripts/sanity.sh
	$(BIN)/python tests/scripts/check_collection_versions.py requirements.yml galaxy.yml
	$(BIN)/python tests/scripts/role_docs.py --check
	$(BIN)/python tests/scripts/check_upstream_evidence.py

unit: setup  ## Unit tests for modules and module_utils.
	@# The backup tool's tests run the real age and rsync (Debian packages).
	command -v age >/dev/null && command -v rsync >/dev/null || { test "$$(id -u)" -eq 0 \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends age rsync >/dev/null; }
	$(BIN)/pytest

# Plain, unwrapped output whatever TERM says: the log is read by people, CI's tail and
# repeat-failures.sh alike.
molecule: export NO_COLOR := 1
molecule: setup  ## Molecule scenarios (all, in three lanes side by side, or SCENARIO=name) on a real Docker engine.
ifeq ($(SCENARIO),)
	tests/scripts/with-docker-engine.sh tests/scripts/molecule-lanes.sh $(TEST_LOGS)
else
	tests/scripts/repeat-failures.sh $(TEST_LOGS)/molecule.log \
		tests/scripts/with-docker-engine.sh $(BIN)/molecule test --scenario-name $(SCENARIO)
endif

test: lint unit molecule  ## Everything CI checks.

bench: setup  ## Wall time of a fresh converge and a no-op re-run of site.yml.
	tests/scripts/with-docker-engine.sh tests/scripts/bench.sh

clean:  ## Remove the venv and the collection link (keeps cached test images).
	rm -rf $(VENV) collections
