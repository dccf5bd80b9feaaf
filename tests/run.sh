#!/usr/bin/env bash
# Runs every test: the Rust unit and integration tests, the bundles in real third-party hosts, and
# the mixer window under Xvfb (tests/gui) and the separation-quality smoke test (tests/quality).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked
cargo xtask bundle demixer --release
cargo build --release --locked -p demixer --features standalone --bin demixer-standalone
python3 -m pytest tests -q
