#!/usr/bin/env bash
# Runs every test: the Rust unit and integration tests, the bundles in real third-party hosts, and
# the separation-quality smoke test (tests/quality).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked
cargo xtask bundle demixer --release
python3 -m pytest tests -q
