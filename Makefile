# fleet.mtls: build and test entry points. The logic lives in tools/*.sh; this file
# only wires targets together. `make test` on a fresh Debian 12 host (as root)
# installs everything it needs first.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Scenario order is fixed: cheap plumbing first, then the service roles alone (openssl-made
# certificates), the full rollout, and rotation under load last (the longest). All reuse the
# same two images.
MOLECULE_SCENARIOS ?= fleet schedule services mtls vault lifecycle
# Test layers `make test` runs, in order; each is also its own target.
TEST_LAYERS ?= build unit modules compat sanity lint molecule

export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.build/collections
export MOLECULE_SCENARIOS

.PHONY: help setup host venv stage images test build unit modules compat sanity lint molecule demo demo-clean bench clean distclean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{ printf "  %-11s %s\n", $$1, $$2 }'

setup: host venv stage ## host packages, podman settings, .venv, staged collection

host: ## apt packages and /etc/containers/containers.conf (needs root the first time)
	@tools/setup-host.sh

venv: host ## .venv from requirements-dev.txt (reinstalled when that file changes)
	@tools/venv.sh

stage: host ## copy the collection to .build/collections/ansible_collections/fleet/mtls
	@tools/stage-collection.sh

images: host ## Debian 12/13 test images (rebuilt when tests/images/ changes)
	@tools/images.sh

test: ## every test layer; fails if any layer fails
	@MAKE="$(MAKE)" tools/test-layers.sh $(TEST_LAYERS)

build: setup ## build the collection tarball into .build/dist and check its contents
	@tools/build-collection.sh

unit: setup ## pytest tests/unit (no tests collected = failure)
	@tools/pytest.sh tests/unit

modules: setup ## pytest tests/modules on both cores: modules run through ansible (skipped if absent)
	@tools/pytest.sh tests/modules --skip-if-missing -n 2

compat: setup ## unit + module layers (with a site run) on the oldest claimed ansible-core (.build/venv-core216)
	@tools/compat.sh

sanity: setup ## ansible-test sanity --python 3.11 on the staged collection
	@tools/sanity.sh

lint: setup ## ansible-lint --offline --profile production
	@tools/lint.sh

molecule: setup images ## molecule test for each of MOLECULE_SCENARIOS that exists
	@tools/molecule.sh $(MOLECULE_SCENARIOS)

demo: setup images ## bring up a demo fleet and roll out mTLS with playbooks/site.yml
	@tools/demo.sh up

demo-clean: ## remove the demo fleet (containers, network, state)
	@tools/demo.sh clean

bench: setup ## run tests/bench/*.py
	@tools/bench.sh

clean: demo-clean ## remove build output (.build, tests/output, caches)
	rm -rf .build tests/output .pytest_cache
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean ## also remove .venv and the locally built test images
	rm -rf .venv
	-podman rmi --ignore $$(podman images --filter reference='localhost/fleet-mtls-test' -q) 2>/dev/null
