# The README's two commands: `make demo` and `make test`. Slow artefacts (cargo's
# target dir, the runner image, npm packages, the charmcraft venv) are cached under
# /var/cache/github-runner so later runs reuse them.
SHELL := /bin/bash
CARGO_TARGET_DIR ?= /var/cache/github-runner/target
export CARGO_TARGET_DIR
CHARM := $(CURDIR)/github-runner_ubuntu-22.04-amd64.charm

.PHONY: test lint unit setup charm demo bench clean

test: lint setup charm unit

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

# Test prerequisites, each idempotent: curl/jq for the simulator's runner app, Prism and
# GitHub's OpenAPI description, and our own LXD daemon with a bridge, pool and image.
setup:
	scripts/deps.sh
	scripts/prism-setup.sh
	scripts/testbed.sh up

unit:
	GHR_CHARM=$(CHARM) cargo test --workspace --no-fail-fast

charm:
	scripts/pack-charm.sh

demo:
	scripts/demo.sh

bench:
	scripts/bench.sh

clean:
	rm -rf *.charm build parts stage prime overlay
