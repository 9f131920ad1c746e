#!/usr/bin/env bash
# `make demo`: on a fresh Debian or Ubuntu machine, as root. Installs what is missing
# (LXD among it), starts our own LXD daemon with a NAT-less bridge and builds the runner
# image once (cached), then runs the demo (tests/demo.rs): the charm binary driven
# through install, config-changed and the timer's reconciles against the GitHub
# simulator, 3 container runners, 5 jobs, and a table of runners and jobs; then a unit on
# demand (2 warm runners, at most 5) and a burst of 8 jobs, as a timeline of its pool. Everything
# the demo starts is removed when it ends; the test daemon stays for later runs
# (`scripts/testbed.sh down` stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "make demo needs root (LXD, network namespaces)" >&2; exit 1; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/github-runner/target}
scripts/deps.sh
scripts/testbed.sh up
eval "$(scripts/testbed.sh env)"
cargo test --test demo -- --ignored --nocapture --test-threads 1
