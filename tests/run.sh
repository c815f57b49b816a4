#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and property tests, and the
# lab tests (real sshd VMs on loopback). Run as root on Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/lab/install-deps.sh
cargo fmt --check
cargo clippy --all-targets -- -D warnings
bash -n tests/lab/lab.sh && shellcheck tests/lab/lab.sh tests/lab/install-deps.sh tests/lab/demo.sh tests/run.sh tests/soak.sh benches/inventory_scale.sh && shellcheck -x benches/fleet.sh benches/fleet_scale.sh benches/deploy_rewrite.sh && shellcheck -s sh tests/lab/irissim src/remote/scripts/*.sh # and composed with their library, and the rendered hooks, by the unit tests
# One build for the soak and the tests: the test build's binary (its
# dependencies built once with the dev-dependencies' features; a plain
# `cargo build` would build tokio and all above it, the AWS SDK included,
# a second time).
if cargo nextest --version >/dev/null 2>&1; then
	cargo nextest run --no-run
else
	cargo test --no-run
fi
# A short chaos soak (random faults, invariants on the simulator's truth);
# the 200-run one is run by hand: bash tests/soak.sh 200 SEED.
QUIESCE_BIN=${CARGO_TARGET_DIR:-$PWD/target}/debug/quiesce bash tests/soak.sh 20 2026
if cargo nextest --version >/dev/null 2>&1; then
	cargo nextest run --no-fail-fast
else
	cargo test --no-fail-fast
fi
