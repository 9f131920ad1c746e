#!/usr/bin/env bash
# `make bench`: release build, then the measurements of tests/bench.rs against the real
# LXD test daemon and the GitHub simulator; writes BENCHMARKS.md. With
# GHR_BENCH_QUICK=1 (CI) it runs each measurement once, small, and writes elsewhere:
# a check that the benchmarks still work, never a judgement of speed.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "make bench needs root (LXD, network namespaces)" >&2; exit 1; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/github-runner/target}
scripts/deps.sh
scripts/testbed.sh up
eval "$(scripts/testbed.sh env)"
profile=(--release)
build=release
if [ "${GHR_BENCH_QUICK:-}" = 1 ]; then
    # Speed is not judged in quick mode: the debug build `make test` made will do.
    export GHR_BENCH_OUT=${GHR_BENCH_OUT:-$(mktemp --suffix=-BENCHMARKS.md)}
    profile=()
    build=debug
fi
# The hook is measured through the repo's own dispatch next to the binary, as the
# packed charm lays them out.
cargo build "${profile[@]}" -p github-runner --bin github-runner
cargo build "${profile[@]}" -p aproxy --bin aproxy
charm_dir=$(mktemp -d)
trap 'rm -rf "$charm_dir" "${clean_target:-}"' EXIT
cp dispatch "$charm_dir/dispatch"
cp "$CARGO_TARGET_DIR/$build/github-runner" "$charm_dir/github-runner"
cp "$CARGO_TARGET_DIR/$build/aproxy" "$charm_dir/aproxy"
if [ "${GHR_BENCH_QUICK:-}" != 1 ]; then
    # A clean release build of the whole workspace, timed, into a throwaway target dir.
    clean_target=$(mktemp -d)
    start=$(date +%s)
    cargo build --release --workspace --locked --target-dir "$clean_target" --quiet
    GHR_BENCH_CLEAN_BUILD_SECS=$(($(date +%s) - start))
    export GHR_BENCH_CLEAN_BUILD_SECS
    rm -rf "$clean_target"
fi
GHR_BENCH_DISPATCH=$charm_dir/dispatch cargo test "${profile[@]}" --test bench -- --ignored --nocapture --test-threads 1
