#!/usr/bin/env bash
# Runs every test on a fresh Debian machine or a developer's: first installs what is missing
# (tests/setup.sh: apt packages and tests/requirements.txt; skip with DEMIXER_SKIP_SETUP=1), then
# the Rust unit and integration tests, the bundles in real third-party hosts (tests/hosts), the
# command-line tool on every WAV layout (tests/files), the mixer window under Xvfb (tests/gui) and
# the separation-quality smoke test (tests/quality). The ONNX engine's tests load ONNX Runtime from
# DEMIXER_ORT_DYLIB, by default the library in the `onnxruntime` wheel (tests/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${DEMIXER_SKIP_SETUP:-0}" = 1 ] || bash tests/setup.sh
if [ -z "${DEMIXER_ORT_DYLIB:-}" ]; then
  DEMIXER_ORT_DYLIB=$(python3 -c 'import glob, os, onnxruntime
print(sorted(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime.so.*")))[-1])')
  export DEMIXER_ORT_DYLIB
fi
cargo test --workspace --locked
cargo xtask bundle demixer --release
cargo xtask bundle reference-delay --release
cargo build --release --locked -p demixer --features standalone --bin demixer-standalone
cargo build --release --locked -p demixer-cli
python3 -m pytest tests -q
