#!/usr/bin/env bash
# Runs every test: the Rust unit and integration tests, then the bundles in real third-party hosts.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked
cargo xtask bundle demixer --release
python3 -m pytest tests/hosts -q
